using System.Data.Common;
using System.Globalization;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Replay;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Evaluation;

/// <summary>
/// Evaluates each device's records in sequence order over the gap-free prefix, so arrival order
/// never changes a decision: the stored stream is run through <see cref="DecisionReplay"/> (the
/// code the ledger verifier runs too), with gaps waited for up to the gap timeout and the
/// evaluators' state kept in the same transaction.
/// </summary>
internal sealed class DeviceEvaluation(DeviceDirectory devices, PolicyTable policies, ClaimBook claims, TimeSpan gapTimeout)
{
    /// <summary>The last evaluation state this instance committed or loaded, per device.</summary>
    private readonly Dictionary<string, State> _cache = new(StringComparer.Ordinal);
    private long _chainBreaks;

    /// <summary>Stored records read ahead per device behind its cursor (a device waiting at a long gap has its further records read one by one).</summary>
    private const int PendingWindow = 256;

    /// <summary>Chain breaks this instance found since it started (counted once committed).</summary>
    public long ChainBreakCount => Interlocked.Read(ref _chainBreaks);

    /// <summary>
    /// Reads in one go what evaluating <paramref name="deviceIds"/> needs from the database: their
    /// cursors, the saved evaluators of those whose cached state is stale (written by another
    /// instance), their members' policies, and the stored records waiting behind each cursor (up to
    /// <see cref="PendingWindow"/> each). Per device these were several round trips; under a shared
    /// subscription, where a device's records are spread over processes, they were most of a
    /// PostgreSQL batch's time (docs/performance.md).
    /// </summary>
    public Prepared Prepare(DbTransaction tx, IReadOnlyCollection<string> deviceIds)
    {
        var ids = deviceIds.ToList();
        devices.Remember(tx, ids);
        var cursors = DeviceDirectory.Cursors(tx, ids);
        var stale = new List<string>();
        lock (_cache)
        {
            foreach (var id in ids)
            {
                if (!cursors.TryGetValue(id, out var cursor) || !_cache.TryGetValue(id, out var cached) || cached.Cursor.Version != cursor.Version)
                {
                    stale.Add(id);
                }
            }
        }

        var saved = stale.Count > 0 ? EvaluatorTable.Load(tx, stale) : [];
        var members = stale.Count > 0 ? policies.ForMembers(tx, [.. stale.Where(cursors.ContainsKey).Select(id => devices.Enrolled(tx, id)).Select(d => (d.PoolId, d.MemberId))]) : [];
        var ranges = cursors.Where(c => c.Value.MaxSequence > c.Value.EvaluatedSequence)
            .Select(c => (c.Key, c.Value.EvaluatedSequence, Math.Min(c.Value.MaxSequence, c.Value.EvaluatedSequence + PendingWindow))).ToList();
        var pending = ranges.Count > 0 ? EvidenceTable.Pending(tx, ranges) : [];
        var prepared = new Prepared(cursors, saved, pending, new DeferredWrites());
        foreach (var (member, list) in members)
        {
            prepared.Policies[member] = list;
        }

        return prepared;
    }

    /// <summary>
    /// Feeds the device's records from the first unevaluated one for as long as there is no gap (or
    /// the gap is older than the timeout); opens claims for firings. A chain break stays stored but
    /// is not fed (recorded in <c>chain_breaks</c>). Its cursor, evaluator states and findings are
    /// queued on <paramref name="prepared"/>'s writes (the caller flushes them before the commit); the
    /// cached state is updated only after the commit (<paramref name="afterCommit"/>).
    /// </summary>
    public void Evaluate(DbTransaction tx, Prepared prepared, string deviceId, IReadOnlyDictionary<long, VerifiedRecord> batch, DateTimeOffset now, List<Action> afterCommit)
    {
        var writes = prepared.Writes;
        var device = devices.Enrolled(tx, deviceId);
        var current = Current(tx, prepared, device);
        var stamp = LedgerEntry.FormatTime(now);
        var max = Math.Max(current.Cursor.MaxSequence, batch.Count > 0 ? batch.Keys.Max() : -1);
        var next = current.Cursor.EvaluatedSequence + 1;
        if (current.Cursor.EvaluatedSequence < 0 && batch.Values.FirstOrDefault(r => r.ChainStart) is { } start)
        {
            next = start.Sequence; // the device's chain starts here (sequence numbers may start at 0 or 1)
        }

        // Stored records behind the cursor as Prepare read them: complete up to `covered`. Above it
        // only this batch's records are new (its rows are the only ones the transaction added).
        var waiting = prepared.Pending.GetValueOrDefault(deviceId);
        var covered = Math.Min(current.Cursor.MaxSequence, current.Cursor.EvaluatedSequence + PendingWindow);
        var evaluators = current.Evaluators.Select(e => e with { Feed = e.Feed with { Evaluator = e.Feed.Evaluator.Clone() } }).ToList();
        var replay = new DecisionReplay(current.Cursor.LastHash, [.. evaluators.Select(e => e.Feed)]);
        var breaks = 0;
        while (next <= max)
        {
            var (record, previous) = batch.TryGetValue(next, out var r) ? (r.Facts, r.PreviousHash)
                : next <= covered ? (waiting is not null && waiting.TryGetValue(next, out var w) ? (w.Facts, w.Previous) : (null, null))
                : next <= current.Cursor.MaxSequence ? EvidenceTable.Facts(tx, deviceId, next)
                : (null, null); // above every previously stored record only this batch's are stored
            if (record is null)
            {
                // A gap: wait for it unless the first record after it has waited longer than the timeout.
                if (FirstAfter(tx, deviceId, next, batch, waiting, covered, current.Cursor.MaxSequence, stamp) is not { } after)
                {
                    break;
                }

                ChainFindings.RecordGap(writes, deviceId, next, after.Sequence - 1, stamp);
                if (now - DateTimeOffset.Parse(after.ReceivedAt, CultureInfo.InvariantCulture) < gapTimeout)
                {
                    break;
                }

                ChainFindings.SkipGap(writes, deviceId, next, stamp);
                next = after.Sequence;
                replay.Gap();
                continue;
            }

            var expected = replay.LastHash;
            if (replay.Next(record, previous, (i, firing) => claims.Open(tx, evaluators[i].Policy, deviceId, firing)) == ReplayStep.ChainBreak)
            {
                ChainFindings.RecordBreak(writes, deviceId, next, expected!, previous!, stamp);
                breaks++;
            }

            next++;
        }

        // Rules decided on the clock (an absence) look only at a device whose stored records are all
        // replayed: a record waiting behind a gap would otherwise pass for silence.
        if (next > max && evaluators.Any(e => e.Feed.Evaluator.NeedsClock))
        {
            var lastArrival = batch.ContainsKey(next - 1) ? now : EvidenceTable.ReceivedAt(tx, deviceId, next - 1);
            replay.Tick(now, lastArrival, (i, firing) => claims.Open(tx, evaluators[i].Policy, deviceId, firing));
        }

        var cursor = new EvaluationCursor(next - 1, max, current.Cursor.Version + 1, replay.LastHash);
        DeviceDirectory.SaveCursor(writes, deviceId, cursor);
        for (var i = 0; i < evaluators.Count; i++)
        {
            var saved = evaluators[i].Feed.Evaluator.SaveState();
            if (saved != evaluators[i].SavedState)
            {
                EvaluatorTable.Save(writes, deviceId, evaluators[i].Policy.Id, evaluators[i].Feed.FromSequence, saved);
                evaluators[i] = evaluators[i] with { SavedState = saved };
            }
        }

        var updated = new State(cursor, evaluators);
        afterCommit.Add(() =>
        {
            lock (_cache)
            {
                _cache[deviceId] = updated;
            }

            Interlocked.Add(ref _chainBreaks, breaks); // counted once committed, not for a rolled-back batch
        });
    }

    /// <summary>
    /// The first stored record after a missing <paramref name="seq"/> and when it arrived, from what
    /// <see cref="Prepare"/> read (every stored row in (evaluated, <paramref name="covered"/>]) and
    /// this batch (the only rows the transaction added); read from the database only when stored
    /// rows above <paramref name="covered"/> (up to <paramref name="storedMax"/>) were left unread.
    /// </summary>
    private static (long Sequence, string ReceivedAt)? FirstAfter(DbTransaction tx, string deviceId, long seq, IReadOnlyDictionary<long, VerifiedRecord> batch,
        SortedList<long, PendingRecord>? waiting, long covered, long storedMax, string stamp)
    {
        (long Sequence, string ReceivedAt)? found = null;
        if (waiting is not null)
        {
            foreach (var (s, record) in waiting)
            {
                if (s > seq)
                {
                    found = (s, record.ReceivedAt);
                    break;
                }
            }
        }

        if (found is null && storedMax > covered)
        {
            return EvidenceTable.FirstAfter(tx, deviceId, seq);
        }

        foreach (var s in batch.Keys)
        {
            if (s > seq && (found is null || s < found.Value.Sequence))
            {
                found = (s, stamp);
            }
        }

        return found;
    }

    /// <summary>
    /// The device's evaluation state as the database has it now: the cached copy when its version
    /// matches the device row (nothing else wrote since), else the evaluators loaded from their rows
    /// (written by another instance, or a policy issued since). Policies without a row (databases of
    /// schema 1) are rebuilt once by replaying the evaluated records. Cursor and rows come from
    /// <paramref name="prepared"/>; the member's policies are read once per batch.
    /// </summary>
    private State Current(DbTransaction tx, Prepared prepared, DeviceInfo device)
    {
        var cursor = prepared.Cursors.TryGetValue(device.Id, out var known) ? known
            : throw new ClaimsException(ClaimsError.NotFound, $"Device '{device.Id}' is no longer enrolled");
        lock (_cache)
        {
            if (_cache.TryGetValue(device.Id, out var cached) && cached.Cursor.Version == cursor.Version)
            {
                return cached;
            }
        }

        var rows = prepared.Saved.GetValueOrDefault(device.Id) ?? new Dictionary<string, (long From, string State)>(StringComparer.Ordinal);
        var evaluators = new List<PolicyEvaluator>();
        List<EvidenceFacts>? replay = null;
        if (!prepared.Policies.TryGetValue((device.PoolId, device.MemberId), out var memberPolicies))
        {
            prepared.Policies[(device.PoolId, device.MemberId)] = memberPolicies = policies.ForMember(tx, device.PoolId, device.MemberId);
        }

        foreach (var policy in memberPolicies)
        {
            if (rows.TryGetValue(policy.Id, out var row))
            {
                var restored = TriggerEvaluator.Restore(policy.Rule, policy.Context, device.Id, row.State, cursor.EvaluatedSequence);
                evaluators.Add(new PolicyEvaluator(policy, new TriggerFeed(restored, row.From), row.State));
                continue;
            }

            var evaluator = new TriggerEvaluator(policy.Rule, policy.Context);
            replay ??= cursor.EvaluatedSequence < 0 ? [] : EvidenceTable.FactsThrough(tx, device.Id, cursor.EvaluatedSequence); // nothing evaluated yet: nothing to replay
            foreach (var facts in replay)
            {
                evaluator.Feed(facts);
            }

            evaluators.Add(new PolicyEvaluator(policy, new TriggerFeed(evaluator, -1), null));
        }

        return new State(cursor, evaluators);
    }

    /// <summary>
    /// What one transaction's evaluation read up front (<see cref="Prepare"/>) and the writes it
    /// queues (flushed by the caller before the commit).
    /// </summary>
    internal sealed record Prepared(
        Dictionary<string, EvaluationCursor> Cursors,
        Dictionary<string, Dictionary<string, (long From, string State)>> Saved,
        Dictionary<string, SortedList<long, PendingRecord>> Pending,
        DeferredWrites Writes)
    {
        public Dictionary<(string PoolId, string MemberId), List<PolicyRow>> Policies { get; } = [];
    }

    /// <summary>A device's evaluation state at one version of its device row.</summary>
    private sealed record State(EvaluationCursor Cursor, IReadOnlyList<PolicyEvaluator> Evaluators);

    /// <summary>One policy's evaluator for a device and the state last saved for it.</summary>
    private sealed record PolicyEvaluator(PolicyRow Policy, TriggerFeed Feed, string? SavedState);
}
