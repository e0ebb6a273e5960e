using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;

namespace ShareVault.Claims;

/// <summary>
/// A record that passed verification (signature, device/topic, size, time) and is ready to store.
/// <paramref name="ChainStart"/>: the record carries no previous hash (the device's first record).
/// <paramref name="PreviousHash"/>: the hash the record says its predecessor has (empty at a chain
/// start; null when unknown, which skips the chain check).
/// </summary>
public sealed record VerifiedRecord(string DeviceId, long Sequence, DateTimeOffset Time, byte[] Hash, byte[] Cose, IReadOnlyList<Reading> Readings, bool ChainStart = false, byte[]? PreviousHash = null)
{
    public EvidenceFacts Facts => new(DeviceId, Sequence, Hash, Readings);
}

/// <summary>What happened to one record of a batch.</summary>
public enum StoreOutcome
{
    /// <summary>Written durably in this batch.</summary>
    Stored,

    /// <summary>The same record was already stored (a replay or a redelivery): receipt again, change nothing.</summary>
    Duplicate,

    /// <summary>Another record already holds this sequence number: rejected as <c>sequence_reused</c>.</summary>
    Conflict,
}

/// <summary>Tunables of the claims engine.</summary>
public sealed record ClaimsOptions
{
    /// <summary>A checkpoint is signed once this many entries follow the last one…</summary>
    public int CheckpointEvery { get; init; } = 64;

    /// <summary>…or once the last one is this old and entries follow it.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A missing sequence number is waited for this long before evaluation moves past it (a permanent gap).</summary>
    public TimeSpan GapTimeout { get; init; } = TimeSpan.FromMinutes(2);
}

/// <summary>
/// Pools, members, policies, premiums, devices, evidence, claims, payouts and the pool ledgers over
/// one SQLite file. Every state change and its ledger entry commit in one transaction; evidence is
/// evaluated in sequence order over the gap-free prefix, so arrival order never changes a decision.
/// </summary>
public sealed class ClaimsEngine : IDisposable
{
    private static readonly JsonSerializerOptions WebJson = new(JsonSerializerDefaults.Web);
    private static readonly TimeSpan UnknownDeviceRecheck = TimeSpan.FromSeconds(1);

    private readonly ClaimsDatabase _db;
    private readonly IPoolSigner _signer;
    private readonly TimeProvider _time;
    private readonly ClaimsOptions _options;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly SemaphoreSlim _signing = new(1, 1);
    private readonly Dictionary<string, DeviceState> _devices = new(StringComparer.Ordinal);
    private readonly Dictionary<string, PolicyRow> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _unknownDevices = new(StringComparer.Ordinal);
    private long _chainBreaks;

    public ClaimsEngine(ClaimsDatabase db, IPoolSigner signer, TimeProvider time, ClaimsOptions? options = null)
    {
        _db = db ?? throw new ArgumentNullException(nameof(db));
        _signer = signer ?? throw new ArgumentNullException(nameof(signer));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _options = options ?? new ClaimsOptions();
        LoadDevices();
    }

    public ClaimsDatabase Database => _db;

    public IPoolSigner Signer => _signer;

    // ---------------------------------------------------------------- pools, members, policies

    public async Task CreatePoolAsync(string id, string name, string currency, string keyName, long maxPayout, CancellationToken cancellationToken)
    {
        ValidateId(id, nameof(id));
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (currency is not { Length: 3 } || !currency.All(char.IsAsciiLetterUpper))
        {
            throw new ArgumentException($"Currency '{currency}' must be an ISO 4217 code such as EUR", nameof(currency));
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxPayout);
        if (!_signer.Exists(keyName))
        {
            throw new ArgumentException($"No threshold key named '{keyName}' (create it with 'sharevault key create')", nameof(keyName));
        }

        await InTransactionAsync(tx =>
        {
            if (Exists(tx, "SELECT 1 FROM pools WHERE id=@id", ("@id", id)))
            {
                throw new InvalidOperationException($"Pool '{id}' already exists");
            }

            Exec(tx, "INSERT INTO pools(id,name,currency,key_name,max_payout,created_at) VALUES (@id,@n,@c,@k,@m,@t)",
                ("@id", id), ("@n", name), ("@c", currency), ("@k", keyName), ("@m", maxPayout), ("@t", Now()));
            Append(tx, id, LedgerEntry.PoolCreated, new JsonObject
            {
                ["pool"] = id,
                ["name"] = name,
                ["currency"] = currency,
                ["key"] = keyName,
                ["max_payout"] = maxPayout,
                ["jwks_sha256"] = Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(_signer.Jwks(keyName)))),
            });
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task AddMemberAsync(string poolId, string memberId, string name, CancellationToken cancellationToken)
    {
        ValidateId(memberId, nameof(memberId));
        await InTransactionAsync(tx =>
        {
            RequirePool(tx, poolId);
            if (Exists(tx, "SELECT 1 FROM members WHERE pool_id=@p AND id=@m", ("@p", poolId), ("@m", memberId)))
            {
                throw new InvalidOperationException($"Member '{memberId}' already belongs to pool '{poolId}'");
            }

            Exec(tx, "INSERT INTO members(pool_id,id,name,created_at) VALUES (@p,@m,@n,@t)", ("@p", poolId), ("@m", memberId), ("@n", name), ("@t", Now()));
            Append(tx, poolId, LedgerEntry.MemberJoined, new JsonObject { ["member"] = memberId, ["name"] = name });
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Issues a policy: its rule's canonical text and SHA-256 go into the policy and the ledger.</summary>
    public async Task<PolicyRow> IssuePolicyAsync(string poolId, string memberId, string policyId, string ruleText, long payoutAmount, int votesRequired, RuleContext? context, CancellationToken cancellationToken)
    {
        ValidateId(policyId, nameof(policyId));
        var rule = TriggerRule.Parse(ruleText);
        context ??= RuleContext.Empty;
        _ = new TriggerEvaluator(rule, context); // throws if the rule names a place or window the policy lacks
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(payoutAmount);
        ArgumentOutOfRangeException.ThrowIfNegative(votesRequired);
        var contextJson = RuleContextJson.Write(context);
        var row = new PolicyRow(policyId, poolId, memberId, rule, payoutAmount, votesRequired, context);
        await InTransactionAsync(tx =>
        {
            RequireMember(tx, poolId, memberId);
            if (Exists(tx, "SELECT 1 FROM policies WHERE id=@id", ("@id", policyId)))
            {
                throw new InvalidOperationException($"Policy '{policyId}' already exists");
            }

            Exec(tx, "INSERT INTO policies(id,pool_id,member_id,rule_text,rule_hash,payout_amount,votes_required,context,created_at) VALUES (@id,@p,@m,@r,@h,@a,@v,@c,@t)",
                ("@id", policyId), ("@p", poolId), ("@m", memberId), ("@r", rule.Text), ("@h", rule.HashHex), ("@a", payoutAmount),
                ("@v", votesRequired), ("@c", contextJson.ToJsonString()), ("@t", Now()));
            Append(tx, poolId, LedgerEntry.PolicyIssued, new JsonObject
            {
                ["policy"] = policyId,
                ["member"] = memberId,
                ["rule"] = rule.Text,
                ["rule_hash"] = rule.HashHex,
                ["payout_amount"] = payoutAmount,
                ["votes_required"] = votesRequired,
                ["context"] = contextJson,
            });

            // The member's devices start evaluating the new policy with their next record. Bumping each
            // device's state version tells every service instance (this one, or one in another process)
            // to reload that device's evaluators before it evaluates again.
            var initial = new TriggerEvaluator(rule, context).SaveState();
            Exec(tx, "INSERT INTO evaluators(device_id,policy_id,from_seq,state) SELECT id, @pol, evaluated_seq, @st FROM devices WHERE pool_id=@p AND member_id=@m",
                ("@pol", policyId), ("@st", initial), ("@p", poolId), ("@m", memberId));
            Exec(tx, "UPDATE devices SET state_version=state_version+1 WHERE pool_id=@p AND member_id=@m", ("@p", poolId), ("@m", memberId));
        }, cancellationToken).ConfigureAwait(false);

        return row;
    }

    public async Task RecordPremiumAsync(string poolId, string memberId, long amount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(amount);
        await InTransactionAsync(tx =>
        {
            RequireMember(tx, poolId, memberId);
            Exec(tx, "INSERT INTO premiums(pool_id,member_id,amount,paid_at) VALUES (@p,@m,@a,@t)", ("@p", poolId), ("@m", memberId), ("@a", amount), ("@t", Now()));
            Append(tx, poolId, LedgerEntry.Premium, new JsonObject { ["member"] = memberId, ["amount"] = amount });
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Binds a device (its P-256 public key, SubjectPublicKeyInfo DER) to a member's policies in a pool.</summary>
    public async Task EnrollDeviceAsync(string poolId, string memberId, string deviceId, byte[] publicKeySpki, CancellationToken cancellationToken)
    {
        ValidateId(deviceId, nameof(deviceId));
        ArgumentNullException.ThrowIfNull(publicKeySpki);
        using (var key = ECDsa.Create())
        {
            key.ImportSubjectPublicKeyInfo(publicKeySpki, out _);
            if (key.KeySize != 256)
            {
                throw new ArgumentException($"Device keys are P-256 (ES256, RFC 9053 §2.1); this one is {key.KeySize} bits", nameof(publicKeySpki));
            }
        }

        await InTransactionAsync(tx =>
        {
            RequireMember(tx, poolId, memberId);
            if (Exists(tx, "SELECT 1 FROM devices WHERE id=@id", ("@id", deviceId)))
            {
                throw new InvalidOperationException($"Device '{deviceId}' is already enrolled");
            }

            Exec(tx, "INSERT INTO devices(id,pool_id,member_id,public_key,enrolled_at) VALUES (@id,@p,@m,@k,@t)",
                ("@id", deviceId), ("@p", poolId), ("@m", memberId), ("@k", publicKeySpki), ("@t", Now()));
            Append(tx, poolId, LedgerEntry.DeviceEnrolled, new JsonObject
            {
                ["device"] = deviceId,
                ["member"] = memberId,
                ["key_sha256"] = Convert.ToHexStringLower(SHA256.HashData(publicKeySpki)),
            });
        }, cancellationToken).ConfigureAwait(false);
        LoadDevices();
    }

    /// <summary>The enrolled key of a device, or null when the device is unknown.</summary>
    public DeviceInfo? Device(string deviceId)
    {
        var now = _time.GetUtcNow();
        lock (_devices)
        {
            if (_devices.TryGetValue(deviceId, out var d))
            {
                return new DeviceInfo(deviceId, d.PoolId, d.MemberId, d.PublicKey);
            }

            // Asked about very recently and not enrolled then: answer from memory, so a stream of
            // records from an unknown device costs one lookup a second, not one per record.
            if (_unknownDevices.TryGetValue(deviceId, out var askedAt) && now - askedAt < UnknownDeviceRecheck)
            {
                return null;
            }
        }

        // Enrolled by another process (the CLI, another instance) since we cached? One row by key.
        DeviceRow? row;
        using (var c = _db.OpenReader())
        {
            row = Devices(c, null, ("id", deviceId)).SingleOrDefault();
        }

        lock (_devices)
        {
            if (row is null)
            {
                if (_unknownDevices.Count > 10_000)
                {
                    _unknownDevices.Clear(); // bounded: ids come from untrusted input
                }

                _unknownDevices[deviceId] = now;
                return null;
            }

            _unknownDevices.Remove(deviceId);
            var state = _devices.TryGetValue(deviceId, out var known) ? known : _devices[deviceId] = new DeviceState(row.PoolId, row.MemberId, row.PublicKey);
            return new DeviceInfo(deviceId, state.PoolId, state.MemberId, state.PublicKey);
        }
    }

    // ---------------------------------------------------------------- evidence

    /// <summary>
    /// Stores verified records in one transaction, evaluates every device's gap-free prefix, and opens
    /// (and, where the policy says so, approves) the claims it triggers — all before returning, so a
    /// receipt sent after this call is backed by a durable commit.
    /// </summary>
    public Task<IReadOnlyList<StoreOutcome>> StoreAsync(IReadOnlyList<VerifiedRecord> records, CancellationToken cancellationToken) =>
        StoreAsync(records, [], cancellationToken);

    /// <summary>As above, and records the batch's rejections in the same transaction.</summary>
    public async Task<IReadOnlyList<StoreOutcome>> StoreAsync(IReadOnlyList<VerifiedRecord> records, IReadOnlyList<RejectionRow> rejections, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(rejections);
        var outcomes = new StoreOutcome[records.Count];
        if (records.Count == 0 && rejections.Count == 0)
        {
            return outcomes;
        }

        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            var stamp = LedgerEntry.FormatTime(now);
            using var tx = _db.BeginWrite();
            var touched = new Dictionary<string, Dictionary<long, VerifiedRecord>>(StringComparer.Ordinal);
            var inserted = _db.Dialect == SqlDialect.PostgreSql ? InsertEvidenceBatched(tx, records, stamp) : InsertEvidence(tx, records, stamp);
            using (var existing = ClaimsDatabase.Command(_db.Writer, tx, "SELECT hash FROM evidence WHERE device_id=@d AND seq=@s", ("@d", ""), ("@s", 0L)))
            {
                for (var i = 0; i < records.Count; i++)
                {
                    var r = records[i];
                    if (inserted[i])
                    {
                        outcomes[i] = StoreOutcome.Stored;
                        if (!touched.TryGetValue(r.DeviceId, out var byDevice))
                        {
                            touched[r.DeviceId] = byDevice = [];
                        }

                        byDevice[r.Sequence] = r;
                        continue;
                    }

                    // Not inserted: a row was already there (stored earlier, or earlier in this batch);
                    // ON CONFLICT DO NOTHING never changes it, so looking it up after all inserts sees
                    // the same row as looking it up right after this record's insert.
                    existing.Parameters["@d"].Value = r.DeviceId;
                    existing.Parameters["@s"].Value = r.Sequence;
                    var stored = existing.ExecuteScalar() as byte[];
                    outcomes[i] = stored is not null && stored.AsSpan().SequenceEqual(r.Hash) ? StoreOutcome.Duplicate : StoreOutcome.Conflict;
                }
            }

            for (var i = 0; i < records.Count; i++)
            {
                if (outcomes[i] == StoreOutcome.Conflict)
                {
                    InsertRejection(tx, new RejectionRow(stamp, records[i].DeviceId, ShareVault.Evidence.EvidenceTopics.Evidence(records[i].DeviceId), records[i].Sequence,
                        RejectionRow.SequenceReused, "another record is already stored under this sequence number", records[i].Cose.Length));
                }
            }

            foreach (var rejection in rejections)
            {
                InsertRejection(tx, rejection);
            }

            var pending = new List<Action>();
            foreach (var (deviceId, batch) in touched)
            {
                Evaluate(tx, deviceId, batch, now, pending);
            }

            tx.Commit();
            foreach (var apply in pending)
            {
                apply();
            }

            return outcomes;
        }
        finally
        {
            _write.Release();
        }
    }

    private const string InsertEvidenceSql = "INSERT INTO evidence(device_id,seq,time,received_at,hash,cose,readings,prev) VALUES (@d,@s,@t,@r,@h,@c,@j,@pr) ON CONFLICT DO NOTHING";

    /// <summary>PostgreSQL commands sent per round trip when inserting evidence.</summary>
    private const int EvidenceBatchSize = 256;

    /// <summary>Inserts each record in order, one statement each (SQLite: no round trip, the engine is in process); true where a row was inserted.</summary>
    private static bool[] InsertEvidence(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, string stamp)
    {
        var inserted = new bool[records.Count];
        if (records.Count == 0)
        {
            return inserted; // a batch of rejections only
        }

        using var insert = ClaimsDatabase.Command(tx.Connection!, tx, InsertEvidenceSql, EvidenceValues(records[0], stamp));
        for (var i = 0; i < records.Count; i++)
        {
            foreach (var (name, value) in EvidenceValues(records[i], stamp))
            {
                insert.Parameters[name].Value = value ?? DBNull.Value;
            }

            inserted[i] = insert.ExecuteNonQuery() == 1;
        }

        return inserted;
    }

    /// <summary>
    /// As <see cref="InsertEvidence"/>, the same statement per record in the same order, but sent as
    /// one batch of up to <see cref="EvidenceBatchSize"/> commands per round trip: over a network
    /// every statement otherwise costs a round trip (~130 µs on loopback), which made the evidence
    /// inserts half of PostgreSQL's commit time. Each command's row count says whether it inserted.
    /// </summary>
    private static bool[] InsertEvidenceBatched(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, string stamp)
    {
        var inserted = new bool[records.Count];
        for (var start = 0; start < records.Count; start += EvidenceBatchSize)
        {
            var count = Math.Min(EvidenceBatchSize, records.Count - start);
            using var batch = tx.Connection!.CreateBatch();
            batch.Transaction = tx;
            for (var i = start; i < start + count; i++)
            {
                var command = batch.CreateBatchCommand();
                command.CommandText = InsertEvidenceSql;
                foreach (var (name, value) in EvidenceValues(records[i], stamp))
                {
                    var parameter = command.CreateParameter();
                    parameter.ParameterName = name;
                    parameter.Value = value ?? DBNull.Value;
                    command.Parameters.Add(parameter);
                }

                batch.BatchCommands.Add(command);
            }

            batch.ExecuteNonQuery();
            for (var i = 0; i < count; i++)
            {
                inserted[start + i] = batch.BatchCommands[i].RecordsAffected == 1;
            }
        }

        return inserted;
    }

    /// <summary>The parameters of <see cref="InsertEvidenceSql"/> for one record.</summary>
    private static (string Name, object? Value)[] EvidenceValues(VerifiedRecord r, string stamp) =>
    [
        ("@d", r.DeviceId), ("@s", r.Sequence), ("@t", LedgerEntry.FormatTime(r.Time)), ("@r", stamp),
        ("@h", r.Hash), ("@c", r.Cose), ("@j", ReadingsJson.Write(r.Readings)), ("@pr", r.PreviousHash),
    ];

    private static void InsertRejection(DbTransaction tx, RejectionRow r) =>
        Exec(tx, "INSERT INTO rejections(received_at,device_id,topic,seq,reason,detail,size) VALUES (@t,@d,@to,@s,@r,@de,@z)",
            ("@t", r.ReceivedAt), ("@d", r.DeviceId), ("@to", r.Topic), ("@s", r.Sequence), ("@r", r.Reason), ("@de", r.Detail), ("@z", r.Size));

    /// <summary>Stored rejections, newest first, optionally for one device or reason.</summary>
    public IReadOnlyList<RejectionRow> Rejections(string? deviceId = null, string? reason = null, int limit = 100)
    {
        using var c = _db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("device_id", deviceId), ("reason", reason));
        return Query(c, $"SELECT received_at,device_id,topic,seq,reason,detail,size FROM rejections{where} ORDER BY id DESC LIMIT @l",
            r => new RejectionRow(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.GetString(4), r.GetString(5), (int)r.GetInt64(6)),
            [.. parameters, ("@l", (long)limit)]);
    }

    /// <summary>Rejection counts by reason, from the table (survives restarts).</summary>
    public IReadOnlyDictionary<string, long> RejectionCounts()
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT reason, COUNT(*) FROM rejections GROUP BY reason ORDER BY reason", r => (r.GetString(0), r.GetInt64(1))).ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
    }

    /// <summary>Moves evaluation past gaps older than the gap timeout (call periodically).</summary>
    public async Task AdvancePastStaleGapsAsync(CancellationToken cancellationToken)
    {
        List<string> ids;
        using (var c = _db.OpenReader())
        {
            ids = Query(c, "SELECT id FROM devices WHERE max_seq > evaluated_seq ORDER BY id", r => r.GetString(0));
        }

        if (ids.Count == 0)
        {
            return;
        }

        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var now = _time.GetUtcNow();
            using var tx = _db.BeginWrite();
            var pending = new List<Action>();
            foreach (var id in ids)
            {
                Evaluate(tx, id, [], now, pending);
            }

            tx.Commit();
            foreach (var apply in pending)
            {
                apply();
            }
        }
        finally
        {
            _write.Release();
        }
    }

    /// <summary>
    /// Feeds the device's records in sequence order from the first unevaluated one for as long as
    /// there is no gap (or the gap is older than the timeout); opens claims for firings. A record
    /// whose previous hash is not the hash of the record before it is a chain break: it stays stored
    /// but is not fed (recorded in <c>chain_breaks</c>), so a forked chain cannot make a decision.
    /// The evaluators' state is written in the same transaction; the cached copy is updated only
    /// after the commit (<paramref name="pending"/>).
    /// </summary>
    private void Evaluate(DbTransaction tx, string deviceId, Dictionary<long, VerifiedRecord> batch, DateTimeOffset now, List<Action> pending)
    {
        DeviceState? state;
        lock (_devices)
        {
            _devices.TryGetValue(deviceId, out state);
        }

        if (state is null)
        {
            // Enrolled by another process since this one cached the devices.
            var row = Devices(tx.Connection!, tx, ("id", deviceId)).SingleOrDefault() ?? throw new InvalidOperationException($"Device '{deviceId}' is not enrolled");
            lock (_devices)
            {
                state = _devices.TryGetValue(deviceId, out var known) ? known : _devices[deviceId] = new DeviceState(row.PoolId, row.MemberId, row.PublicKey);
            }
        }

        var current = CurrentEvaluation(tx, deviceId, state);
        var max = Math.Max(current.MaxSequence, batch.Count > 0 ? batch.Keys.Max() : -1);
        var next = current.EvaluatedSequence + 1;
        if (current.EvaluatedSequence < 0 && batch.Values.FirstOrDefault(r => r.ChainStart) is { } start)
        {
            next = start.Sequence; // the device's chain starts here (sequence numbers may start at 0 or 1)
        }

        var lastHash = current.LastHash;
        var breaks = 0;
        var evaluators = current.Evaluators.Select(e => e with { Evaluator = e.Evaluator.Clone() }).ToList();
        while (next <= max)
        {
            var (record, previous) = batch.TryGetValue(next, out var r) ? (r.Facts, r.PreviousHash) : LoadFacts(tx, deviceId, next);
            if (record is null)
            {
                // A gap: wait for it unless the first record after it has waited longer than the timeout.
                var after = ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT seq FROM evidence WHERE device_id=@d AND seq>@s ORDER BY seq LIMIT 1", ("@d", deviceId), ("@s", next));
                if (after is null)
                {
                    break;
                }

                var firstAfter = ClaimsDatabase.ToInt64(after);
                var receivedAt = (string)ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT received_at FROM evidence WHERE device_id=@d AND seq=@s", ("@d", deviceId), ("@s", firstAfter))!;
                // A gap seen again may have narrowed (records inside it arrived): to_seq is what a skip
                // moves past, so keep it current until then.
                Exec(tx, "INSERT INTO gaps(device_id,from_seq,to_seq,detected_at) VALUES (@d,@f,@t,@n) ON CONFLICT (device_id,from_seq) DO UPDATE SET to_seq=excluded.to_seq WHERE gaps.skipped_at IS NULL",
                    ("@d", deviceId), ("@f", next), ("@t", firstAfter - 1), ("@n", LedgerEntry.FormatTime(now)));
                if (now - DateTimeOffset.Parse(receivedAt, CultureInfo.InvariantCulture) < _options.GapTimeout)
                {
                    break;
                }

                Exec(tx, "UPDATE gaps SET skipped_at=@n WHERE device_id=@d AND from_seq=@f", ("@n", LedgerEntry.FormatTime(now)), ("@d", deviceId), ("@f", next));
                next = firstAfter;
                lastHash = null; // the predecessor is missing: the chain cannot be checked across the gap
                continue;
            }

            // RFC 9052 says nothing of chains; ours (docs/evidence-format.md) links each record to the
            // SHA-256 of its predecessor's COSE bytes. Only checked where both hashes are known.
            if (lastHash is not null && previous is not null && !CryptographicOperations.FixedTimeEquals(previous, lastHash))
            {
                Exec(tx, "INSERT INTO chain_breaks(device_id,seq,expected,found,detected_at) VALUES (@d,@s,@e,@f,@n) ON CONFLICT DO NOTHING",
                    ("@d", deviceId), ("@s", next), ("@e", lastHash), ("@f", previous), ("@n", LedgerEntry.FormatTime(now)));
                breaks++;
                lastHash = record.Hash;
                next++;
                continue;
            }

            foreach (var (policy, evaluator, from, _) in evaluators)
            {
                if (record.Sequence <= from)
                {
                    continue;
                }

                if (evaluator.Feed(record) is { } firing)
                {
                    OpenClaim(tx, policy, deviceId, firing);
                }
            }

            lastHash = record.Hash;
            next++;
        }

        var evaluated = next - 1;
        var version = current.Version + 1;
        Exec(tx, "UPDATE devices SET evaluated_seq=@e, max_seq=@m, last_hash=@h, state_version=@v WHERE id=@d",
            ("@e", evaluated), ("@m", max), ("@h", lastHash), ("@v", version), ("@d", deviceId));
        for (var i = 0; i < evaluators.Count; i++)
        {
            var saved = evaluators[i].Evaluator.SaveState();
            if (saved != evaluators[i].SavedState)
            {
                Exec(tx, "INSERT INTO evaluators(device_id,policy_id,from_seq,state) VALUES (@d,@p,@f,@s) ON CONFLICT (device_id,policy_id) DO UPDATE SET state=excluded.state",
                    ("@d", deviceId), ("@p", evaluators[i].Policy.Id), ("@f", evaluators[i].FromSequence), ("@s", saved));
                evaluators[i] = evaluators[i] with { SavedState = saved };
            }
        }

        var updated = new Evaluation(evaluated, max, version, lastHash, evaluators);
        pending.Add(() =>
        {
            lock (_devices)
            {
                state.Current = updated;
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
    private Evaluation CurrentEvaluation(DbTransaction tx, string deviceId, DeviceState state)
    {
        long evaluated, max, version;
        byte[]? lastHash;
        using (var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT evaluated_seq, max_seq, state_version, last_hash FROM devices WHERE id=@d", ("@d", deviceId)))
        using (var reader = command.ExecuteReader())
        {
            if (!reader.Read())
            {
                throw new InvalidOperationException($"Device '{deviceId}' is no longer enrolled");
            }

            (evaluated, max, version, lastHash) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : (byte[])reader[3]);
        }

        lock (_devices)
        {
            if (state.Current is { } cached && cached.Version == version)
            {
                return cached;
            }
        }

        var rows = new Dictionary<string, (long From, string State)>(StringComparer.Ordinal);
        using (var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT policy_id, from_seq, state FROM evaluators WHERE device_id=@d", ("@d", deviceId)))
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                rows[reader.GetString(0)] = (reader.GetInt64(1), reader.GetString(2));
            }
        }

        var evaluators = new List<PolicyEvaluator>();
        List<EvidenceFacts>? replay = null;
        foreach (var policy in Policies(tx, state.PoolId, state.MemberId))
        {
            if (rows.TryGetValue(policy.Id, out var row))
            {
                evaluators.Add(new PolicyEvaluator(policy, TriggerEvaluator.Restore(policy.Rule, policy.Context, deviceId, row.State, evaluated), row.From, row.State));
                continue;
            }

            var evaluator = new TriggerEvaluator(policy.Rule, policy.Context);
            replay ??= ReplayFacts(tx, deviceId, evaluated);
            foreach (var facts in replay)
            {
                evaluator.Feed(facts);
            }

            evaluators.Add(new PolicyEvaluator(policy, evaluator, -1, null));
        }

        return new Evaluation(evaluated, max, version, lastHash, evaluators);
    }

    /// <summary>The pool member's policies; each rule parsed once per process (policies never change once issued).</summary>
    private List<PolicyRow> Policies(DbTransaction tx, string poolId, string memberId) =>
        Query(tx.Connection!, tx, "SELECT id, rule_text, payout_amount, votes_required, context FROM policies WHERE pool_id=@p AND member_id=@m ORDER BY id", r =>
        {
            var id = r.GetString(0);
            lock (_policies)
            {
                if (!_policies.TryGetValue(id, out var policy))
                {
                    _policies[id] = policy = new PolicyRow(id, poolId, memberId, TriggerRule.Parse(r.GetString(1)), r.GetInt64(2), (int)r.GetInt64(3),
                        RuleContextJson.Read(JsonNode.Parse(r.GetString(4))!.AsObject()));
                }

                return policy;
            }
        }, ("@p", poolId), ("@m", memberId));

    private static List<EvidenceFacts> ReplayFacts(DbTransaction tx, string deviceId, long evaluatedSequence)
    {
        var facts = new List<EvidenceFacts>();
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT seq, hash, readings FROM evidence WHERE device_id=@d AND seq<=@s ORDER BY seq", ("@d", deviceId), ("@s", evaluatedSequence));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            facts.Add(new EvidenceFacts(deviceId, reader.GetInt64(0), (byte[])reader[1], ReadingsJson.Read(reader.GetString(2))));
        }

        return facts;
    }

    private static (EvidenceFacts? Facts, byte[]? Previous) LoadFacts(DbTransaction tx, string deviceId, long seq)
    {
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT hash, readings, prev FROM evidence WHERE device_id=@d AND seq=@s", ("@d", deviceId), ("@s", seq));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? (new EvidenceFacts(deviceId, seq, (byte[])reader[0], ReadingsJson.Read(reader.GetString(1))), reader.IsDBNull(2) ? null : (byte[])reader[2])
            : (null, null);
    }

    private void OpenClaim(DbTransaction tx, PolicyRow policy, string deviceId, TriggerFiring firing)
    {
        var startSeq = firing.Records[0].Sequence;
        var id = ClaimId(policy.Id, deviceId, startSeq);
        var maxPayout = Convert.ToInt64(ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT max_payout FROM pools WHERE id=@p", ("@p", policy.PoolId)), CultureInfo.InvariantCulture);
        var amount = Math.Min(policy.PayoutAmount, maxPayout);
        var evidence = new JsonArray([.. firing.Records.Select(r => (JsonNode)new JsonObject { ["seq"] = r.Sequence, ["sha256"] = Convert.ToHexStringLower(r.Hash) })]);
        var inserted = Exec(tx, "INSERT INTO claims(id,pool_id,member_id,policy_id,device_id,start_seq,status,amount,rule_hash,evidence,opened_at) VALUES (@id,@p,@m,@pol,@d,@s,'opened',@a,@h,@e,@t) ON CONFLICT DO NOTHING",
            ("@id", id), ("@p", policy.PoolId), ("@m", policy.MemberId), ("@pol", policy.Id), ("@d", deviceId), ("@s", startSeq),
            ("@a", amount), ("@h", policy.Rule.HashHex), ("@e", evidence.ToJsonString()), ("@t", Now()));
        if (inserted == 0)
        {
            return; // this episode already opened its claim: nothing opens twice
        }

        Append(tx, policy.PoolId, LedgerEntry.ClaimOpened, new JsonObject
        {
            ["claim"] = id,
            ["policy"] = policy.Id,
            ["member"] = policy.MemberId,
            ["device"] = deviceId,
            ["rule"] = policy.Rule.Text,
            ["rule_hash"] = policy.Rule.HashHex,
            ["amount"] = amount,
            ["from"] = LedgerEntry.FormatTime(firing.From),
            ["until"] = LedgerEntry.FormatTime(firing.Until),
            ["evidence"] = evidence,
        });
        if (policy.VotesRequired == 0)
        {
            Decide(tx, policy.PoolId, id, "approved", "rule", "the policy approves its trigger automatically");
        }
    }

    public static string ClaimId(string policyId, string deviceId, long startSeq) =>
        "clm-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{policyId}\n{deviceId}\n{startSeq}")))[..24];

    private void Decide(DbTransaction tx, string poolId, string claimId, string decision, string by, string reason)
    {
        Exec(tx, "UPDATE claims SET status=@s, decided_at=@t, reason=@r WHERE id=@id", ("@s", decision), ("@t", Now()), ("@r", reason), ("@id", claimId));
        Append(tx, poolId, LedgerEntry.Decision, new JsonObject { ["claim"] = claimId, ["decision"] = decision, ["by"] = by, ["reason"] = reason });
    }

    // ---------------------------------------------------------------- votes, payouts, checkpoints

    /// <summary>A member's vote on a claim whose policy asks for votes; the claimant cannot vote.</summary>
    public async Task<string> VoteAsync(string claimId, string memberId, bool approve, CancellationToken cancellationToken)
    {
        var status = string.Empty;
        await InTransactionAsync(tx =>
        {
            using var command = ClaimsDatabase.Command(tx.Connection!, tx,
                "SELECT c.pool_id, c.member_id, c.status, p.votes_required FROM claims c JOIN policies p ON p.id=c.policy_id WHERE c.id=@id", ("@id", claimId));
            string poolId, claimant;
            long required;
            using (var reader = command.ExecuteReader())
            {
                if (!reader.Read())
                {
                    throw new KeyNotFoundException($"No claim '{claimId}'");
                }

                (poolId, claimant, status, required) = (reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3));
            }

            RequireMember(tx, poolId, memberId);
            if (memberId == claimant)
            {
                throw new InvalidOperationException("A member cannot vote on their own claim");
            }

            if (status != "opened")
            {
                throw new InvalidOperationException($"Claim '{claimId}' is {status}; votes are closed");
            }

            if (Exec(tx, "INSERT INTO votes(claim_id,member_id,approve,cast_at) VALUES (@c,@m,@a,@t) ON CONFLICT DO NOTHING", ("@c", claimId), ("@m", memberId), ("@a", approve ? 1 : 0), ("@t", Now())) == 0)
            {
                throw new InvalidOperationException($"Member '{memberId}' has already voted on claim '{claimId}'");
            }

            var approvals = Convert.ToInt64(ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT COUNT(*) FROM votes WHERE claim_id=@c AND approve=1", ("@c", claimId)), CultureInfo.InvariantCulture);
            var rejections = Convert.ToInt64(ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT COUNT(*) FROM votes WHERE claim_id=@c AND approve=0", ("@c", claimId)), CultureInfo.InvariantCulture);
            if (approvals >= required)
            {
                Decide(tx, poolId, claimId, status = "approved", "votes", $"{approvals} member(s) approved");
            }
            else if (rejections >= required)
            {
                Decide(tx, poolId, claimId, status = "declined", "votes", $"{rejections} member(s) declined");
            }
        }, cancellationToken).ConfigureAwait(false);
        return status;
    }

    /// <summary>
    /// Signs and records a payout for every approved claim that has none and that the pool's balance
    /// covers. The instruction is deterministic (no time in it) and keyed by claim, so a crash
    /// between signing and storing re-signs the same instruction, and the payouts table's primary
    /// key makes a second payout for a claim impossible.
    /// </summary>
    public async Task<int> ProcessPayoutsAsync(CancellationToken cancellationToken)
    {
        await _signing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var paid = 0;
            foreach (var claim in ListClaims(status: "approved"))
            {
                using (var reader = _db.OpenReader())
                {
                    if (ClaimsDatabase.Scalar(reader, null, "SELECT 1 FROM payouts WHERE claim_id=@c", ("@c", claim.Id)) is not null)
                    {
                        continue;
                    }

                    if (Balance(reader, claim.PoolId) < claim.Amount)
                    {
                        continue; // stays approved until premiums cover it
                    }
                }

                var pool = GetPool(claim.PoolId)!;
                var instruction = PayoutInstruction.Build(claim, pool.Currency);
                var payload = CanonicalJson.Serialize(instruction);
                var (jws, kid) = await _signer.SignAsync(pool.KeyName, payload, cancellationToken).ConfigureAwait(false);
                await InTransactionAsync(tx =>
                {
                    // Again under the writer lock: another instance (or the CLI) may have paid from the
                    // pool while this one was signing; the balance read above is only a hint.
                    if (Balance(tx.Connection!, tx, claim.PoolId) < claim.Amount)
                    {
                        return;
                    }

                    if (Exec(tx, "INSERT INTO payouts(claim_id,pool_id,instruction,jws,kid,signed_at) VALUES (@c,@p,@i,@j,@k,@t) ON CONFLICT DO NOTHING",
                        ("@c", claim.Id), ("@p", claim.PoolId), ("@i", Encoding.UTF8.GetString(payload)), ("@j", jws), ("@k", kid), ("@t", Now())) == 0)
                    {
                        return;
                    }

                    Exec(tx, "UPDATE claims SET status='paid' WHERE id=@c AND status='approved'", ("@c", claim.Id));
                    Append(tx, claim.PoolId, LedgerEntry.Payout, new JsonObject
                    {
                        ["claim"] = claim.Id,
                        ["member"] = claim.MemberId,
                        ["amount"] = claim.Amount,
                        ["currency"] = pool.Currency,
                        ["kid"] = kid,
                        ["jws"] = jws,
                    });
                    paid++;
                }, cancellationToken).ConfigureAwait(false);
            }

            return paid;
        }
        finally
        {
            _signing.Release();
        }
    }

    /// <summary>Signs a checkpoint over the ledger head when N entries or T minutes have passed since the last one (or when forced).</summary>
    public async Task<LedgerCheckpoint?> CheckpointAsync(string poolId, bool force, CancellationToken cancellationToken)
    {
        await _signing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var pool = GetPool(poolId) ?? throw new KeyNotFoundException($"No pool '{poolId}'");
            var head = LedgerHead(poolId);
            if (head is null)
            {
                return null;
            }

            var all = Checkpoints(poolId);
            var last = all.Count > 0 ? all[^1] : null;
            if ((last is not null && head.Value.Seq <= last.Sequence) || !(force || IsDue(poolId, head.Value.Seq, last)))
            {
                return null;
            }

            var time = Now();
            var payload = LedgerCheckpoint.Payload(poolId, head.Value.Seq, head.Value.Hash, time);
            var (jws, _) = await _signer.SignAsync(pool.KeyName, payload, cancellationToken).ConfigureAwait(false);
            await InTransactionAsync(tx => Exec(tx, "INSERT INTO checkpoints(pool_id,seq,hash,time,jws) VALUES (@p,@s,@h,@t,@j) ON CONFLICT DO NOTHING",
                ("@p", poolId), ("@s", head.Value.Seq), ("@h", head.Value.Hash), ("@t", time), ("@j", jws)), cancellationToken).ConfigureAwait(false);
            return new LedgerCheckpoint(poolId, head.Value.Seq, head.Value.Hash, time, jws);
        }
        finally
        {
            _signing.Release();
        }
    }

    /// <summary>Checkpoints every pool whose ledger is due (N entries or T minutes).</summary>
    public async Task CheckpointDueAsync(CancellationToken cancellationToken)
    {
        foreach (var pool in ListPools())
        {
            await CheckpointAsync(pool.Id, force: false, cancellationToken).ConfigureAwait(false);
        }
    }

    private bool IsDue(string poolId, long headSeq, LedgerCheckpoint? last)
    {
        var since = last is null ? DateTimeOffset.Parse(First(poolId)!.Time, CultureInfo.InvariantCulture) : DateTimeOffset.Parse(last.Time, CultureInfo.InvariantCulture);
        return headSeq - (last?.Sequence ?? 0) >= _options.CheckpointEvery || _time.GetUtcNow() - since >= _options.CheckpointInterval;
    }

    // ---------------------------------------------------------------- queries

    public IReadOnlyList<PoolInfo> ListPools()
    {
        using var c = _db.OpenReader();
        var pools = Query(c, "SELECT id,name,currency,key_name,max_payout FROM pools ORDER BY id", r => new PoolInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), 0));
        return [.. pools.Select(p => p with { Balance = Balance(c, p.Id) })]; // after the reader closes: one command at a time per connection (PostgreSQL)
    }

    public PoolInfo? GetPool(string poolId) => ListPools().FirstOrDefault(p => p.Id == poolId);

    public IReadOnlyList<MemberInfo> ListMembers(string poolId)
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT id,name FROM members WHERE pool_id=@p ORDER BY id", r => new MemberInfo(r.GetString(0), r.GetString(1)), ("@p", poolId));
    }

    public IReadOnlyList<PolicyInfo> ListPolicies(string? poolId = null)
    {
        using var c = _db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId));
        return Query(c, $"SELECT id,pool_id,member_id,rule_text,rule_hash,payout_amount,votes_required,context FROM policies{where} ORDER BY id",
            r => new PolicyInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), (int)r.GetInt64(6), JsonNode.Parse(r.GetString(7))!.AsObject()),
            parameters);
    }

    public IReadOnlyList<DeviceRow> ListDevices(string? poolId = null)
    {
        using var c = _db.OpenReader();
        return Devices(c, null, ("pool_id", poolId));
    }

    public IReadOnlyList<ClaimInfo> ListClaims(string? poolId = null, string? status = null)
    {
        using var c = _db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId), ("status", status));
        return Query(c, $"SELECT id,pool_id,member_id,policy_id,device_id,start_seq,status,amount,rule_hash,evidence,opened_at,decided_at,reason FROM claims{where} ORDER BY opened_at, id",
            r => new ClaimInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), r.GetString(6), r.GetInt64(7), r.GetString(8),
                JsonNode.Parse(r.GetString(9))!.AsArray(), r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12)),
            parameters);
    }

    public IReadOnlyList<PayoutInfo> ListPayouts(string? poolId = null)
    {
        using var c = _db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId));
        return Query(c, $"SELECT claim_id,pool_id,instruction,jws,kid,signed_at FROM payouts{where} ORDER BY signed_at, claim_id",
            r => new PayoutInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5)), parameters);
    }

    public IReadOnlyList<LedgerEntry> LedgerEntries(string poolId)
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT seq,time,kind,body,prev,hash FROM ledger WHERE pool_id=@p ORDER BY seq",
            r => new LedgerEntry(poolId, r.GetInt64(0), r.GetString(1), r.GetString(2), JsonNode.Parse(r.GetString(3))!.AsObject(), r.GetString(4), r.GetString(5)), ("@p", poolId));
    }

    public IReadOnlyList<LedgerCheckpoint> Checkpoints(string poolId)
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT seq,hash,time,jws FROM checkpoints WHERE pool_id=@p ORDER BY seq",
            r => new LedgerCheckpoint(poolId, r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3)), ("@p", poolId));
    }

    /// <summary>Stored evidence of a device: sequence, time, hash, COSE bytes.</summary>
    public IReadOnlyList<StoredEvidence> Evidence(string deviceId, long fromSeq = 0, int limit = 1000)
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT seq,time,received_at,hash,cose,readings FROM evidence WHERE device_id=@d AND seq>=@s ORDER BY seq LIMIT @l",
            r => new StoredEvidence(deviceId, r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], (byte[])r[4], r.GetString(5)),
            ("@d", deviceId), ("@s", fromSeq), ("@l", limit));
    }

    public StoredEvidence? EvidenceRecord(string deviceId, long seq) => Evidence(deviceId, seq, 1).FirstOrDefault(e => e.Sequence == seq);

    public IReadOnlyList<(long From, long To, string DetectedAt, string? SkippedAt)> Gaps(string deviceId)
    {
        using var c = _db.OpenReader();
        return Query(c, "SELECT from_seq,to_seq,detected_at,skipped_at FROM gaps WHERE device_id=@d ORDER BY from_seq",
            r => (r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3)), ("@d", deviceId));
    }

    /// <summary>Records stored but not evaluated because their previous hash did not match their predecessor's.</summary>
    public IReadOnlyList<ChainBreak> ChainBreaks(string? deviceId = null)
    {
        using var c = _db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("device_id", deviceId));
        return Query(c, $"SELECT device_id,seq,expected,found,detected_at FROM chain_breaks{where} ORDER BY device_id, seq",
            r => new ChainBreak(r.GetString(0), r.GetInt64(1), Convert.ToHexStringLower((byte[])r[2]), Convert.ToHexStringLower((byte[])r[3]), r.GetString(4)), parameters);
    }

    /// <summary>Chain breaks this instance found since it started (the table holds them all).</summary>
    public long ChainBreakCount => Interlocked.Read(ref _chainBreaks);

    public long EvidenceCount()
    {
        using var c = _db.OpenReader();
        return Convert.ToInt64(ClaimsDatabase.Scalar(c, null, "SELECT COUNT(*) FROM evidence"), CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        _write.Dispose();
        _signing.Dispose();
    }

    // ---------------------------------------------------------------- internals

    private (long Seq, string Hash)? LedgerHead(string poolId)
    {
        using var c = _db.OpenReader();
        return Head(c, null, poolId);
    }

    private LedgerEntry? First(string poolId) => LedgerEntries(poolId) is { Count: > 0 } entries ? entries[0] : null;

    private static (long Seq, string Hash)? Head(DbConnection c, DbTransaction? tx, string poolId)
    {
        using var command = ClaimsDatabase.Command(c, tx, "SELECT seq, hash FROM ledger WHERE pool_id=@p ORDER BY seq DESC LIMIT 1", ("@p", poolId));
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetString(1)) : null;
    }

    private void Append(DbTransaction tx, string poolId, string kind, JsonObject body)
    {
        var head = Head(tx.Connection!, tx, poolId);
        var entry = LedgerEntry.Create(poolId, (head?.Seq ?? 0) + 1, _time.GetUtcNow(), kind, body, head?.Hash ?? LedgerEntry.Genesis);
        Exec(tx, "INSERT INTO ledger(pool_id,seq,time,kind,body,prev,hash) VALUES (@p,@s,@t,@k,@b,@pr,@h)",
            ("@p", poolId), ("@s", entry.Sequence), ("@t", entry.Time), ("@k", kind), ("@b", CanonicalJson.SerializeToString(body)), ("@pr", entry.Previous), ("@h", entry.Hash));
    }

    private static long Balance(DbConnection c, string poolId) => Balance(c, null, poolId);

    private static long Balance(DbConnection c, DbTransaction? tx, string poolId)
    {
        var premiums = Convert.ToInt64(ClaimsDatabase.Scalar(c, tx, "SELECT COALESCE(SUM(amount),0) FROM premiums WHERE pool_id=@p", ("@p", poolId)), CultureInfo.InvariantCulture);
        var payouts = Convert.ToInt64(ClaimsDatabase.Scalar(c, tx, "SELECT COALESCE(SUM(c.amount),0) FROM payouts p JOIN claims c ON c.id=p.claim_id WHERE p.pool_id=@p", ("@p", poolId)), CultureInfo.InvariantCulture);
        return premiums - payouts;
    }

    /// <summary>Caches the enrolled devices' keys; evaluation state is loaded per device when it is first evaluated.</summary>
    private void LoadDevices()
    {
        var rows = ListDevices();
        lock (_devices)
        {
            foreach (var row in rows)
            {
                _devices.TryAdd(row.Id, new DeviceState(row.PoolId, row.MemberId, row.PublicKey));
                _unknownDevices.Remove(row.Id);
            }
        }
    }

    private async Task InTransactionAsync(Action<DbTransaction> work, CancellationToken cancellationToken)
    {
        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using (var tx = _db.BeginWrite())
            {
                work(tx);
                tx.Commit();
            }

        }
        finally
        {
            _write.Release();
        }
    }

    private static int Exec(DbTransaction tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, sql, parameters);
        return command.ExecuteNonQuery();
    }

    private static bool Exists(DbTransaction tx, string sql, params (string Name, object? Value)[] parameters) =>
        ClaimsDatabase.Scalar(tx.Connection!, tx, sql, parameters) is not null;

    private static void RequirePool(DbTransaction tx, string poolId)
    {
        if (!Exists(tx, "SELECT 1 FROM pools WHERE id=@p", ("@p", poolId)))
        {
            throw new KeyNotFoundException($"No pool '{poolId}'");
        }
    }

    private static void RequireMember(DbTransaction tx, string poolId, string memberId)
    {
        RequirePool(tx, poolId);
        if (!Exists(tx, "SELECT 1 FROM members WHERE pool_id=@p AND id=@m", ("@p", poolId), ("@m", memberId)))
        {
            throw new KeyNotFoundException($"No member '{memberId}' in pool '{poolId}'");
        }
    }

    /// <summary>Device rows matching the filters that have a value (<see cref="ClaimsDatabase.Where"/>).</summary>
    private static List<DeviceRow> Devices(DbConnection c, DbTransaction? tx, params (string Column, object? Value)[] filters)
    {
        var (where, parameters) = ClaimsDatabase.Where(filters);
        return Query(c, tx, $"SELECT id,pool_id,member_id,public_key,enrolled_at,evaluated_seq,max_seq FROM devices{where} ORDER BY id",
            r => new DeviceRow(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetString(4), r.GetInt64(5), r.GetInt64(6)), parameters);
    }

    private static List<T> Query<T>(DbConnection c, string sql, Func<DbDataReader, T> map, params (string Name, object? Value)[] parameters) =>
        Query(c, null, sql, map, parameters);

    private static List<T> Query<T>(DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map, params (string Name, object? Value)[] parameters)
    {
        using var command = ClaimsDatabase.Command(c, tx, sql, parameters);
        using var reader = command.ExecuteReader();
        var result = new List<T>();
        while (reader.Read())
        {
            result.Add(map(reader));
        }

        return result;
    }

    private string Now() => LedgerEntry.FormatTime(_time.GetUtcNow());

    /// <summary>Pool, member, policy and device ids: 1–64 letters, digits, '-', '_', '.' (they appear in MQTT topics and URLs).</summary>
    private static void ValidateId(string id, string parameter) => Identifier.Validate(id, "Id", parameter);

    private sealed class DeviceState(string poolId, string memberId, byte[] publicKey)
    {
        public string PoolId { get; } = poolId;

        public string MemberId { get; } = memberId;

        public byte[] PublicKey { get; } = publicKey;

        /// <summary>The last evaluation state this instance committed or loaded; null until first needed.</summary>
        public Evaluation? Current { get; set; }
    }

    /// <summary>A device's evaluation state at one <paramref name="Version"/> of its device row.</summary>
    private sealed record Evaluation(long EvaluatedSequence, long MaxSequence, long Version, byte[]? LastHash, IReadOnlyList<PolicyEvaluator> Evaluators);

    /// <summary>One policy's evaluator for a device; FromSequence: a policy issued after enrolment sees only later records.</summary>
    private sealed record PolicyEvaluator(PolicyRow Policy, TriggerEvaluator Evaluator, long FromSequence, string? SavedState);
}

/// <summary>A refused record: when, which device (as claimed, when readable), topic, sequence, reason name, detail and size.</summary>
public sealed record RejectionRow(string ReceivedAt, string? DeviceId, string Topic, long? Sequence, string Reason, string Detail, int Size)
{
    public const string SequenceReused = "SequenceReused";
}

public sealed record PolicyRow(string Id, string PoolId, string MemberId, TriggerRule Rule, long PayoutAmount, int VotesRequired, RuleContext Context);

public sealed record DeviceInfo(string Id, string PoolId, string MemberId, byte[] PublicKey);

public sealed record PoolInfo(string Id, string Name, string Currency, string KeyName, long MaxPayout, long Balance);

public sealed record MemberInfo(string Id, string Name);

public sealed record PolicyInfo(string Id, string PoolId, string MemberId, string Rule, string RuleHash, long PayoutAmount, int VotesRequired, JsonObject Context);

public sealed record DeviceRow(string Id, string PoolId, string MemberId, byte[] PublicKey, string EnrolledAt, long EvaluatedSequence, long MaxSequence);

public sealed record ClaimInfo(string Id, string PoolId, string MemberId, string PolicyId, string DeviceId, long StartSequence, string Status, long Amount, string RuleHash, JsonArray Evidence, string OpenedAt, string? DecidedAt, string? Reason);

public sealed record PayoutInfo(string ClaimId, string PoolId, string Instruction, string Jws, string Kid, string SignedAt);

/// <summary>Record <paramref name="Sequence"/> of a device named <paramref name="Found"/> as its predecessor's hash, not <paramref name="Expected"/>.</summary>
public sealed record ChainBreak(string DeviceId, long Sequence, string Expected, string Found, string DetectedAt);

public sealed record StoredEvidence(string DeviceId, long Sequence, string Time, string ReceivedAt, byte[] Hash, byte[] Cose, string Readings);
