using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Evaluation;
using ShareVault.Claims.Export;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;

namespace ShareVault.Claims;

/// <summary>Tunables of the claims engine.</summary>
public sealed record ClaimsOptions
{
    /// <summary>A checkpoint is signed once this many entries follow the last one…</summary>
    public int CheckpointEvery { get; init; } = 64;

    /// <summary>…or once the last one is this old and entries follow it.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A missing sequence number is waited for this long before evaluation moves past it (a permanent gap).</summary>
    public TimeSpan GapTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The record-time rules applied when a record is stored (window around its arrival, no step back
    /// behind the device's previous record); <c>ledger verify</c> takes the same bounds.
    /// </summary>
    public EvidenceTimeLimits EvidenceTime { get; init; } = EvidenceTimeLimits.Default;
}

/// <summary>
/// The claims service's one entry point: pools, members, policies, premiums, devices, evidence,
/// claims, payouts and the pool ledgers over one database. Each request validates its input, then
/// runs the stores of its concern (folders <c>Pools</c>, <c>Devices</c>, <c>Ingest</c>,
/// <c>Evaluation</c>, <c>Lifecycle</c>, <c>Payouts</c>, <c>Ledger</c>) in one write transaction, so
/// every state change and its ledger entry commit together. Request failures throw
/// <see cref="ClaimsException"/>; a null argument throws the BCL exception.
/// </summary>
public sealed partial class ClaimsEngine : IDisposable
{
    private readonly ClaimsDatabase _db;
    private readonly IPoolSigner _signer;
    private readonly TimeProvider _time;
    private readonly WriteGate _gate;
    private readonly SemaphoreSlim _signing = new(1, 1);
    private readonly LedgerBook _ledger;
    private readonly PoolTables _pools;
    private readonly PolicyTable _policies;
    private readonly DeviceDirectory _devices;
    private readonly EvidenceTable _evidence;
    private readonly RejectionTable _rejections;
    private readonly ChainFindings _findings;
    private readonly ClaimBook _claims;
    private readonly PayoutTable _payouts;
    private readonly PayoutIssuer _payoutIssuer;
    private readonly DeviceEvaluation _evaluation;
    private readonly LedgerExportBuilder _export;
    private readonly EvidenceTimeLimits _evidenceTime;

    public ClaimsEngine(ClaimsDatabase db, IPoolSigner signer, TimeProvider time, ClaimsOptions? options = null)
    {
        _db = db ?? throw new ArgumentNullException(nameof(db));
        _signer = signer ?? throw new ArgumentNullException(nameof(signer));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        options ??= new ClaimsOptions();
        _evidenceTime = (options.EvidenceTime ?? throw new ArgumentException("ClaimsOptions.EvidenceTime is required", nameof(options))).Validate();
        _gate = new WriteGate(db);
        _ledger = new LedgerBook(db, time, options.CheckpointEvery, options.CheckpointInterval);
        _pools = new PoolTables(db, _ledger);
        _policies = new PolicyTable(db, _ledger);
        _devices = new DeviceDirectory(db, _ledger, time);
        _evidence = new EvidenceTable(db);
        _rejections = new RejectionTable(db);
        _findings = new ChainFindings(db);
        _claims = new ClaimBook(db, _ledger, time);
        _payouts = new PayoutTable(db);
        var claimEvidence = new ClaimEvidence(_evidence, _findings);
        _payoutIssuer = new PayoutIssuer(_gate, signer, _ledger, claimEvidence, _devices, time);
        _evaluation = new DeviceEvaluation(_devices, _policies, _claims, options.GapTimeout);
        _export = new LedgerExportBuilder(_policies, _devices, claimEvidence, _claims, _ledger, signer);
        Access = new MemberAccess(db, _gate);
    }

    public ClaimsDatabase Database => _db;

    /// <summary>The HTTP API's sessions, invitations and passkey counters (kept in this database; not ledger state).</summary>
    public MemberAccess Access { get; }

    public IPoolSigner Signer => _signer;

    /// <summary>Chain breaks this instance found since it started (the table holds them all).</summary>
    public long ChainBreakCount => _evaluation.ChainBreakCount;

    // ---------------------------------------------------------------- pools, members, policies, devices

    public Task CreatePoolAsync(string id, string name, string currency, string keyName, long maxPayout, CancellationToken cancellationToken) =>
        CreatePoolAsync(id, name, currency, keyName, maxPayout, [], null, cancellationToken);

    /// <summary>
    /// Creates a pool administered by <paramref name="adminKeys"/> (may be empty: an unadministered
    /// local pool). With admin keys, <paramref name="admin"/> must be a signature by one of them over
    /// the <see cref="RegistryChange.PoolCreated"/> body (<see cref="AdminSignature"/>), and every later
    /// policy and device of the pool needs one too.
    /// </summary>
    public async Task CreatePoolAsync(string id, string name, string currency, string keyName, long maxPayout, IReadOnlyList<AdminKey> adminKeys, JsonObject? admin, CancellationToken cancellationToken)
    {
        Require.Id(id, "Pool id");
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(adminKeys);
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, "A pool needs a name");
        }

        if (currency is not { Length: 3 } || !currency.All(char.IsAsciiLetterUpper))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"Currency '{currency}' must be an ISO 4217 code such as EUR");
        }

        Require.Positive(maxPayout, "The maximum payout");
        if (!_signer.Exists(keyName))
        {
            throw new ClaimsException(ClaimsError.NotFound, $"No threshold key named '{keyName}' (create it with 'sharevault key create')");
        }

        var entry = PoolBody(id, name, currency, keyName, maxPayout, adminKeys);
        RegistryAdmin.Attach(id, LedgerEntry.PoolCreated, entry, adminKeys, admin);
        await _gate.RunAsync(tx => _pools.InsertPool(tx, id, name, currency, keyName, maxPayout, Now(), entry), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The <c>pool_created</c> body a pool administrator signs (its jwks_sha256 from the signer's JWKS of <paramref name="keyName"/>).</summary>
    public JsonObject PoolBody(string id, string name, string currency, string keyName, long maxPayout, IReadOnlyList<AdminKey> adminKeys) =>
        RegistryChange.PoolCreated(id, name, currency, keyName, maxPayout, Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(_signer.Jwks(keyName)))), adminKeys);

    /// <summary>The body a pool administrator signs for <see cref="IssuePolicyAsync(string, string, string, string, long, int, RuleContext?, JsonObject?, CancellationToken)"/> (the rule in its canonical text); throws <see cref="ClaimsException"/> for a bad rule.</summary>
    public static JsonObject PolicyBody(string policyId, string memberId, string ruleText, long payoutAmount, int votesRequired, RuleContext? context)
    {
        ArgumentNullException.ThrowIfNull(ruleText);
        if (!TriggerRule.TryParse(ruleText, out var rule, out var reason))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"The rule does not parse: {reason}");
        }

        return RegistryChange.PolicyIssued(policyId, memberId, rule!.Text, rule.HashHex, payoutAmount, votesRequired, RuleContextJson.Write(context ?? RuleContext.Empty));
    }

    public Task AddMemberAsync(string poolId, string memberId, string name, CancellationToken cancellationToken) =>
        AddMemberAsync(poolId, memberId, name, null, null, cancellationToken);

    /// <summary>
    /// A member joins holding <paramref name="key"/> (a key file, PKCS#11 or passkey key; null: a member
    /// without one), with <paramref name="memberSig"/>, their signature by that key over
    /// <see cref="RegistryChange.MemberJoined"/> (<see cref="MemberSignature"/>); from then on every vote,
    /// policy acceptance and device enrolment of the member needs their signature too.
    /// </summary>
    public Task AddMemberAsync(string poolId, string memberId, string name, MemberKey? key, JsonObject? memberSig, CancellationToken cancellationToken)
    {
        Require.Id(memberId, "Member id");
        ArgumentNullException.ThrowIfNull(name);
        if (string.IsNullOrWhiteSpace(name) || name.Length > 200 || name.Any(char.IsControl))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, "A member's name is 1-200 characters without control characters");
        }

        return _gate.RunAsync(tx => _pools.InsertMember(tx, poolId, memberId, name, key, memberSig, Now()), cancellationToken);
    }

    /// <summary>The key member <paramref name="memberId"/> recorded when joining pool <paramref name="poolId"/>, or null.</summary>
    public MemberKey? MemberKeyOf(string poolId, string memberId)
    {
        using var c = _db.OpenReader();
        return MemberActions.Key(c, null, poolId, memberId);
    }

    /// <summary>The policy's member accepts it, signed by the member when they hold a key (<see cref="RegistryChange.PolicyAccepted"/>).</summary>
    public Task AcceptPolicyAsync(string poolId, string policyId, string memberId, JsonObject? memberSig, CancellationToken cancellationToken) =>
        _gate.RunAsync(tx => _policies.Accept(tx, poolId, policyId, memberId, memberSig), cancellationToken);

    /// <summary>Ids of the pool's policies that their members accepted.</summary>
    public IReadOnlySet<string> AcceptedPolicies(string poolId)
    {
        using var c = _db.OpenReader();
        return PolicyTable.Accepted(c, null, poolId);
    }

    /// <summary>Issues a policy: its rule's canonical text and SHA-256 go into the policy and the ledger.</summary>
    public Task<PolicyRow> IssuePolicyAsync(string poolId, string memberId, string policyId, string ruleText, long payoutAmount, int votesRequired, RuleContext? context, CancellationToken cancellationToken) =>
        IssuePolicyAsync(poolId, memberId, policyId, ruleText, payoutAmount, votesRequired, context, null, cancellationToken);

    /// <summary>As above, with a pool administrator's signature over <see cref="PolicyBody"/> (required when the pool records admin keys).</summary>
    public async Task<PolicyRow> IssuePolicyAsync(string poolId, string memberId, string policyId, string ruleText, long payoutAmount, int votesRequired, RuleContext? context, JsonObject? admin, CancellationToken cancellationToken)
    {
        Require.Id(policyId, "Policy id");
        ArgumentNullException.ThrowIfNull(ruleText);
        if (!TriggerRule.TryParse(ruleText, out var rule, out var reason))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"The rule does not parse: {reason}");
        }

        context ??= RuleContext.Empty;
        try
        {
            _ = new TriggerEvaluator(rule!, context);
        }
        catch (ArgumentException e)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, e.Message, e); // the rule names a place or window the policy lacks
        }

        Require.Positive(payoutAmount, "The payout amount");
        Require.NotNegative(votesRequired, "The votes required");
        var policy = new PolicyRow(policyId, poolId, memberId, rule!, payoutAmount, votesRequired, context);
        await _gate.RunAsync(tx =>
        {
            _policies.Insert(tx, policy, Now(), admin);

            // The member's devices start evaluating the new policy with their next record.
            EvaluatorTable.SeedForPolicy(tx, policy);
            DeviceDirectory.InvalidateEvaluation(tx, poolId, memberId);
        }, cancellationToken).ConfigureAwait(false);
        return policy;
    }

    /// <summary>A premium in a pool without administrators.</summary>
    public Task RecordPremiumAsync(string poolId, string memberId, long amount, CancellationToken cancellationToken) =>
        RecordPremiumAsync(poolId, memberId, amount, null, null, cancellationToken);

    /// <summary>
    /// A premium with its payment reference (unique in the pool) and a pool administrator's signature
    /// over <see cref="RegistryChange.Premium"/>; both are required when the pool records admin keys.
    /// </summary>
    public Task RecordPremiumAsync(string poolId, string memberId, long amount, string? reference, JsonObject? admin, CancellationToken cancellationToken)
    {
        Require.Positive(amount, "A premium");
        if (reference is not null && (reference.Length is 0 or > 128 || reference.Any(char.IsControl)))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, "A payment reference is 1-128 characters without control characters");
        }

        return _gate.RunAsync(tx => _pools.InsertPremium(tx, poolId, memberId, amount, reference, admin, Now()), cancellationToken);
    }

    /// <summary>Binds a device (its P-256 public key, SubjectPublicKeyInfo DER) to a member's policies in a pool.</summary>
    public Task EnrollDeviceAsync(string poolId, string memberId, string deviceId, byte[] publicKeySpki, CancellationToken cancellationToken) =>
        EnrollDeviceAsync(poolId, memberId, deviceId, publicKeySpki, null, cancellationToken);

    /// <summary>As above, with a pool administrator's signature over <see cref="RegistryChange.DeviceEnrolled"/> (required when the pool records admin keys).</summary>
    public Task EnrollDeviceAsync(string poolId, string memberId, string deviceId, byte[] publicKeySpki, JsonObject? admin, CancellationToken cancellationToken) =>
        EnrollDeviceAsync(poolId, memberId, deviceId, publicKeySpki, admin, null, cancellationToken);

    /// <summary>As above, with the member's signature over <see cref="RegistryChange.DeviceEnrolled"/> (required when the member holds a key).</summary>
    public async Task EnrollDeviceAsync(string poolId, string memberId, string deviceId, byte[] publicKeySpki, JsonObject? admin, JsonObject? memberSig, CancellationToken cancellationToken)
    {
        Require.Id(deviceId, "Device id");
        ArgumentNullException.ThrowIfNull(publicKeySpki);
        using (var key = ECDsa.Create())
        {
            try
            {
                key.ImportSubjectPublicKeyInfo(publicKeySpki, out _);
            }
            catch (CryptographicException e)
            {
                throw new ClaimsException(ClaimsError.InvalidInput, "The device key is not an EC SubjectPublicKeyInfo: " + e.Message, e);
            }

            if (key.KeySize != 256)
            {
                throw new ClaimsException(ClaimsError.InvalidInput, $"Device keys are P-256 (ES256, RFC 9053 §2.1); this one is {key.KeySize} bits");
            }
        }

        await _gate.RunAsync(tx =>
        {
            PoolTables.RequireMember(tx, poolId, memberId);
            _devices.Insert(tx, poolId, memberId, deviceId, publicKeySpki, Now(), admin, memberSig);
        }, cancellationToken).ConfigureAwait(false);
        _devices.Reload();
    }

    /// <summary>The enrolled key of a device, or null when the device is unknown.</summary>
    public DeviceInfo? Device(string deviceId) => _devices.Find(deviceId);

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
        if (records.Count == 0 && rejections.Count == 0)
        {
            return [];
        }

        return await _gate.RunAsync<IReadOnlyList<StoreOutcome>>((tx, afterCommit) =>
        {
            var now = _time.GetUtcNow();
            var stamp = LedgerEntry.FormatTime(now);
            var refusals = EvidenceTimeline.Check(tx, records, now, _evidenceTime);
            var accepted = records.Where((_, i) => refusals[i] is null).ToList();
            var inserted = _evidence.Insert(tx, accepted, stamp);
            var outcomes = new StoreOutcome[records.Count];
            var writes = new DeferredWrites();
            var stored = new Dictionary<string, Dictionary<long, VerifiedRecord>>(StringComparer.Ordinal);
            for (int i = 0, a = 0; i < records.Count; i++)
            {
                var r = records[i];
                outcomes[i] = refusals[i]?.Outcome ?? inserted[a++];
                if (outcomes[i] == StoreOutcome.Stored)
                {
                    if (!stored.TryGetValue(r.DeviceId, out var byDevice))
                    {
                        stored[r.DeviceId] = byDevice = [];
                    }

                    byDevice[r.Sequence] = r;
                }
                else if (RejectionRow.ReasonOf(outcomes[i]) is { } reason)
                {
                    var detail = refusals[i]?.Detail ?? "another record is already stored under this sequence number";
                    RejectionTable.Insert(writes, new RejectionRow(stamp, r.DeviceId, EvidenceTopics.Evidence(r.DeviceId), r.Sequence, reason, detail, r.Cose.Length));
                }
            }

            foreach (var rejection in rejections)
            {
                RejectionTable.Insert(writes, rejection);
            }

            // Every device of the batch is read for in one go and its writes sent together: per
            // device round trips to PostgreSQL were most of a batch's time (docs/performance.md).
            var prepared = _evaluation.Prepare(tx, stored.Keys);
            foreach (var (deviceId, batch) in stored)
            {
                _evaluation.Evaluate(tx, prepared, deviceId, batch, now, afterCommit);
            }

            writes.Flush(tx);
            prepared.Writes.Flush(tx);
            return outcomes;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Moves evaluation past gaps older than the gap timeout (call periodically).</summary>
    public async Task AdvancePastStaleGapsAsync(CancellationToken cancellationToken)
    {
        var waiting = _devices.WaitingAtGap();
        if (waiting.Count == 0)
        {
            return;
        }

        await _gate.RunAsync((tx, afterCommit) =>
        {
            var now = _time.GetUtcNow();
            var prepared = _evaluation.Prepare(tx, waiting);
            foreach (var id in waiting)
            {
                _evaluation.Evaluate(tx, prepared, id, new Dictionary<long, VerifiedRecord>(), now, afterCommit);
            }

            prepared.Writes.Flush(tx);

            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Decides the rules that wait on the clock (an absence: <c>no record for 48h during trip</c>) for
    /// every device a policy with such a rule covers, at the engine's time (call periodically). A
    /// device waiting at a gap is left alone: its stored records are not all replayed yet.
    /// </summary>
    public async Task EvaluateSilencesAsync(CancellationToken cancellationToken)
    {
        var members = ListPolicies().Where(p => TriggerRule.TryParse(p.Rule, out var rule, out _) && rule!.Kind == TriggerKind.Absence)
            .Select(p => (p.PoolId, p.MemberId)).ToHashSet();
        if (members.Count == 0)
        {
            return;
        }

        var devices = ListDevices().Where(d => members.Contains((d.PoolId, d.MemberId))).Select(d => d.Id).ToList();
        await _gate.RunAsync((tx, afterCommit) =>
        {
            var now = _time.GetUtcNow();
            var prepared = _evaluation.Prepare(tx, devices);
            foreach (var id in devices)
            {
                _evaluation.Evaluate(tx, prepared, id, new Dictionary<long, VerifiedRecord>(), now, afterCommit);
            }

            prepared.Writes.Flush(tx);

            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stored rejections, newest first, optionally for one device or reason.</summary>
    public IReadOnlyList<RejectionRow> Rejections(string? deviceId = null, string? reason = null, int limit = 100) => _rejections.List(deviceId, reason, limit);

    /// <summary>Rejection counts by reason, from the table (survives restarts).</summary>
    public IReadOnlyDictionary<string, long> RejectionCounts() => _rejections.Counts();

    // ---------------------------------------------------------------- claims, votes, payouts, checkpoints

    public static string ClaimId(string policyId, string deviceId, long startSeq) => ClaimBook.ClaimId(policyId, deviceId, startSeq);

    /// <summary>A member's vote on a claim whose policy asks for votes; the claimant cannot vote. Returns the claim's status text.</summary>
    public Task<string> VoteAsync(string claimId, string memberId, bool approve, CancellationToken cancellationToken) =>
        VoteAsync(claimId, memberId, approve, null, cancellationToken);

    /// <summary>As above, with the member's signature over <see cref="RegistryChange.Vote"/> (required when the member holds a key).</summary>
    public async Task<string> VoteAsync(string claimId, string memberId, bool approve, JsonObject? memberSig, CancellationToken cancellationToken)
    {
        var status = ClaimStatus.Opened;
        await _gate.RunAsync(tx => status = _claims.Vote(tx, claimId, memberId, approve, memberSig), cancellationToken).ConfigureAwait(false);
        return status.ToText();
    }

    /// <summary>
    /// Signs and records a payout for every approved claim that has none and that the pool's balance
    /// covers (<see cref="PayoutIssuer"/>); returns how many it paid.
    /// </summary>
    public async Task<int> ProcessPayoutsAsync(CancellationToken cancellationToken)
    {
        await _signing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _payoutIssuer.PayAsync(_claims.List(null, ClaimStatus.Approved), GetPool, cancellationToken).ConfigureAwait(false);
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
            var pool = GetPool(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
            if (_ledger.CheckpointTarget(poolId, force) is not { } head)
            {
                return null;
            }

            var time = Now();
            var payload = LedgerCheckpoint.Payload(poolId, head.Seq, head.Hash, time);
            // Up to the checkpointed head only: a node's replica must end exactly where the checkpoint points.
            var justification = new JsonObject { ["pool"] = poolId, ["purpose"] = PoolSigningRequest.CheckpointPurpose };
            var request = new PoolSigningRequest(pool.KeyName, poolId, PoolSigningRequest.CheckpointPurpose, payload, justification, after => _ledger.EntriesAfter(poolId, after, head.Seq));
            var (jws, _) = await _signer.SignAsync(request, cancellationToken).ConfigureAwait(false);
            var checkpoint = new LedgerCheckpoint(poolId, head.Seq, head.Hash, time, jws);
            await _gate.RunAsync(tx => LedgerBook.InsertCheckpoint(tx, checkpoint), cancellationToken).ConfigureAwait(false);
            return checkpoint;
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

    // ---------------------------------------------------------------- queries

    public IReadOnlyList<PoolInfo> ListPools()
    {
        using var c = _db.OpenReader();
        var pools = PoolTables.Pools(c);
        return [.. pools.Select(p => p with { Balance = PayoutTable.Balance(c, null, p.Id) })]; // after the reader closes: one command at a time per connection (PostgreSQL)
    }

    public PoolInfo? GetPool(string poolId) => ListPools().FirstOrDefault(p => p.Id == poolId);

    public IReadOnlyList<MemberInfo> ListMembers(string poolId) => _pools.Members(poolId);

    public IReadOnlyList<PolicyInfo> ListPolicies(string? poolId = null) => _policies.List(poolId);

    public IReadOnlyList<DeviceRow> ListDevices(string? poolId = null) => _devices.List(poolId);

    /// <summary>Claims, optionally of one pool and in one status (its text: opened, approved, declined, paid).</summary>
    public IReadOnlyList<ClaimInfo> ListClaims(string? poolId = null, string? status = null)
    {
        if (status is null)
        {
            return _claims.List(poolId, null);
        }

        return ClaimStatusText.TryParse(status, out var parsed) ? _claims.List(poolId, parsed) : [];
    }

    public IReadOnlyList<PayoutInfo> ListPayouts(string? poolId = null) => _payouts.List(poolId);

    public IReadOnlyList<LedgerEntry> LedgerEntries(string poolId) => _ledger.Entries(poolId);

    /// <summary>The pool ledger's head (sequence number and hash), or null before its first entry: one row read.</summary>
    public (long Seq, string Hash)? LedgerHead(string poolId) => _ledger.Head(poolId);

    public IReadOnlyList<LedgerCheckpoint> Checkpoints(string poolId) => _ledger.Checkpoints(poolId);

    /// <summary>A self-contained <see cref="LedgerExport.Format"/> export of a pool, for <see cref="LedgerVerifier"/>.</summary>
    public JsonObject ExportLedger(string poolId) =>
        _export.Build(GetPool(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'"));

    /// <summary>Stored evidence of a device: sequence, time, hash, COSE bytes.</summary>
    public IReadOnlyList<StoredEvidence> Evidence(string deviceId, long fromSeq = 0, int limit = 1000) => _evidence.List(deviceId, fromSeq, limit);

    public StoredEvidence? EvidenceRecord(string deviceId, long seq) => Evidence(deviceId, seq, 1).FirstOrDefault(e => e.Sequence == seq);

    public IReadOnlyList<GapRow> Gaps(string deviceId) => _findings.Gaps(deviceId);

    /// <summary>Records stored but not evaluated because their previous hash did not match their predecessor's.</summary>
    public IReadOnlyList<ChainBreak> ChainBreaks(string? deviceId = null) => _findings.Breaks(deviceId);

    public long EvidenceCount() => _evidence.Count();

    public void Dispose()
    {
        _gate.Dispose();
        _signing.Dispose();
    }

    private string Now() => LedgerEntry.FormatTime(_time.GetUtcNow());
}
