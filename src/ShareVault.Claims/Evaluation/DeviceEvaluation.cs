using System.Data.Common;
using System.Globalization;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Replay;
using ShareVault.Claims.Rules;

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

    /// <summary>Chain breaks this instance found since it started (counted once committed).</summary>
    public long ChainBreakCount => Interlocked.Read(ref _chainBreaks);

    /// <summary>
    /// Feeds the device's records from the first unevaluated one for as long as there is no gap (or
    /// the gap is older than the timeout); opens claims for firings. A chain break stays stored but
    /// is not fed (recorded in <c>chain_breaks</c>). The cached state is updated only after the
    /// commit (<paramref name="afterCommit"/>).
    /// </summary>
    public void Evaluate(DbTransaction tx, string deviceId, IReadOnlyDictionary<long, VerifiedRecord> batch, DateTimeOffset now, List<Action> afterCommit)
    {
        var device = devices.Enrolled(tx, deviceId);
        var current = Current(tx, device);
        var stamp = LedgerEntry.FormatTime(now);
        var max = Math.Max(current.Cursor.MaxSequence, batch.Count > 0 ? batch.Keys.Max() : -1);
        var next = current.Cursor.EvaluatedSequence + 1;
        if (current.Cursor.EvaluatedSequence < 0 && batch.Values.FirstOrDefault(r => r.ChainStart) is { } start)
        {
            next = start.Sequence; // the device's chain starts here (sequence numbers may start at 0 or 1)
        }

        var evaluators = current.Evaluators.Select(e => e with { Feed = e.Feed with { Evaluator = e.Feed.Evaluator.Clone() } }).ToList();
        var replay = new DecisionReplay(current.Cursor.LastHash, [.. evaluators.Select(e => e.Feed)]);
        var breaks = 0;
        while (next <= max)
        {
            var (record, previous) = batch.TryGetValue(next, out var r) ? (r.Facts, r.PreviousHash) : EvidenceTable.Facts(tx, deviceId, next);
            if (record is null)
            {
                // A gap: wait for it unless the first record after it has waited longer than the timeout.
                if (EvidenceTable.FirstAfter(tx, deviceId, next) is not { } after)
                {
                    break;
                }

                ChainFindings.RecordGap(tx, deviceId, next, after.Sequence - 1, stamp);
                if (now - DateTimeOffset.Parse(after.ReceivedAt, CultureInfo.InvariantCulture) < gapTimeout)
                {
                    break;
                }

                ChainFindings.SkipGap(tx, deviceId, next, stamp);
                next = after.Sequence;
                replay.Gap();
                continue;
            }

            var expected = replay.LastHash;
            if (replay.Next(record, previous, (i, firing) => claims.Open(tx, evaluators[i].Policy, deviceId, firing)) == ReplayStep.ChainBreak)
            {
                ChainFindings.RecordBreak(tx, deviceId, next, expected!, previous!, stamp);
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
        DeviceDirectory.SaveCursor(tx, deviceId, cursor);
        for (var i = 0; i < evaluators.Count; i++)
        {
            var saved = evaluators[i].Feed.Evaluator.SaveState();
            if (saved != evaluators[i].SavedState)
            {
                EvaluatorTable.Save(tx, deviceId, evaluators[i].Policy.Id, evaluators[i].Feed.FromSequence, saved);
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
    /// The device's evaluation state as the database has it now: the cached copy when its version
    /// matches the device row (nothing else wrote since), else the evaluators loaded from their rows
    /// (written by another instance, or a policy issued since). Policies without a row (databases of
    /// schema 1) are rebuilt once by replaying the evaluated records.
    /// </summary>
    private State Current(DbTransaction tx, DeviceInfo device)
    {
        var cursor = DeviceDirectory.Cursor(tx, device.Id);
        lock (_cache)
        {
            if (_cache.TryGetValue(device.Id, out var cached) && cached.Cursor.Version == cursor.Version)
            {
                return cached;
            }
        }

        var rows = EvaluatorTable.Load(tx, device.Id);
        var evaluators = new List<PolicyEvaluator>();
        List<EvidenceFacts>? replay = null;
        foreach (var policy in policies.ForMember(tx, device.PoolId, device.MemberId))
        {
            if (rows.TryGetValue(policy.Id, out var row))
            {
                var restored = TriggerEvaluator.Restore(policy.Rule, policy.Context, device.Id, row.State, cursor.EvaluatedSequence);
                evaluators.Add(new PolicyEvaluator(policy, new TriggerFeed(restored, row.From), row.State));
                continue;
            }

            var evaluator = new TriggerEvaluator(policy.Rule, policy.Context);
            replay ??= EvidenceTable.FactsThrough(tx, device.Id, cursor.EvaluatedSequence);
            foreach (var facts in replay)
            {
                evaluator.Feed(facts);
            }

            evaluators.Add(new PolicyEvaluator(policy, new TriggerFeed(evaluator, -1), null));
        }

        return new State(cursor, evaluators);
    }

    /// <summary>A device's evaluation state at one version of its device row.</summary>
    private sealed record State(EvaluationCursor Cursor, IReadOnlyList<PolicyEvaluator> Evaluators);

    /// <summary>One policy's evaluator for a device and the state last saved for it.</summary>
    private sealed record PolicyEvaluator(PolicyRow Policy, TriggerFeed Feed, string? SavedState);
}
