using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Replay;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Node.Guard;

/// <summary>
/// The node's decision whether its hardware signs. It keeps its own verified replica of each pool's
/// ledger (<see cref="PoolReplica"/>, under <c>DataDir/replica/</c>) and trusts nothing the
/// coordinator says beyond what it checks:
/// <list type="bullet">
/// <item>the request's ledger segment must extend the replica's head exactly (a gap is
/// <see cref="GuardRefusal.StaleLedger"/>, different history <see cref="GuardRefusal.ForkedLedger"/>),
/// and every registry change in it must be signed by a configured admin key;</item>
/// <item>a payout instruction must pay an opened, approved, unpaid claim of the replica, within the
/// policy, the pool maximum, this node's limits and the balance, and its trigger is recomputed from
/// the cited COSE records under the enrolled device key with the code <c>ledger verify</c> runs
/// (<see cref="PayoutReplay"/>);</item>
/// <item>a checkpoint must name the replica's head;</item>
/// <item>a treasury payout message (purpose settlement) must pay a claim whose payout the pool key
/// signed, its amount in token units, to the member's admin-signed payout address, on the treasury
/// an admin-signed <c>treasury</c> entry binds the pool to (<see cref="DecideSettlement"/>).</item>
/// </list>
/// Everything in a request is untrusted: every problem is a <see cref="GuardDecision"/> with a
/// reason, never an exception. Requests are decided one at a time.
/// </summary>
public sealed class SigningGuard : IDisposable
{
    private const string PayoutPurpose = "payout";
    private const string CheckpointPurpose = "checkpoint";
    private const string SettlementPurpose = "settlement";

    private readonly GuardOptions _options;
    private readonly string _root;
    private readonly Dictionary<string, PoolReplica> _replicas = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Loads the persisted replicas from <c>DataDir/replica/</c> (each re-folded and re-verified).</summary>
    public SigningGuard(GuardOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(options.DataDir);
        ArgumentNullException.ThrowIfNull(options.AdminKeys);
        ArgumentNullException.ThrowIfNull(options.Time);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxPerPayout);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxPerDay);
        _options = options;
        _root = Path.Combine(Path.GetFullPath(options.DataDir), "replica");
        if (Directory.Exists(_root))
        {
            foreach (var dir in Directory.GetDirectories(_root))
            {
                var pool = Path.GetFileName(dir);
                if (Identifier.IsValid(pool))
                {
                    _replicas[pool] = PoolReplica.Load(dir, pool, options.AdminKeys);
                }
            }
        }
    }

    /// <summary>The replica's head of a pool; (0, 64 zeros) for a pool the node has not seen.</summary>
    public LedgerHead Head(string poolId)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        lock (_lock)
        {
            return _replicas.TryGetValue(poolId, out var replica) ? replica.Head : LedgerHead.Empty;
        }
    }

    /// <summary>Applies the request's ledger segment to the replica (persisted) when it extends the head, then decides.</summary>
    public GuardDecision Check(GuardRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_lock)
        {
            return CheckCore(request);
        }
    }

    /// <summary>
    /// After the partial was produced for an allowed payout: the claim counts as signed by this node
    /// (a different instruction for it is <see cref="GuardRefusal.AlreadyPaid"/>) and its amount
    /// toward the pool's UTC-day total. Persisted before returning. Nothing to remember for a checkpoint.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The name the node contract fixes: the request was signed.")]
    public void Signed(GuardRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_lock)
        {
            if (TryReadPayload(request, out var message, out _) && TreasuryPayoutMessage.TryRead(message!) is not null
                && Text(request.Justification?["pool"]) is { } settledPool && _replicas.TryGetValue(settledPool, out var settledReplica)
                && Text(request.Justification?["claim"]) is { } settledClaim)
            {
                settledReplica.RecordSettlement(settledClaim, Convert.ToHexStringLower(SHA256.HashData(message!)));
                return;
            }

            if (!TryReadPayload(request, out var payload, out _) || PayoutInstruction.TryRead(payload!) is not { } instruction
                || Text(instruction["pool"]) is not { } pool || !_replicas.TryGetValue(pool, out var replica)
                || Text(instruction["claim"]) is not { } claim || Number(instruction["amount"]) is not { } amount)
            {
                return;
            }

            replica.RecordSigned(claim, Convert.ToHexStringLower(SHA256.HashData(payload!)), amount, _options.Time.GetUtcNow());
        }
    }

    public void Dispose()
    {
        // Every write is durable when it returns; nothing is held open between requests.
    }

    private const string NotAJws = "the signing input is not BASE64URL(header).BASE64URL(payload)";

    private GuardDecision CheckCore(GuardRequest request)
    {
        if (request.SigningInput is null || request.Kid is null || request.KeyName is null)
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, "the request lacks its key, kid or signing input", LedgerHead.Empty);
        }

        // Input that is not a JWS at all (a raw `sharevault sign` message) is judged as a raw message
        // below; a JWS whose header is wrong for this request is malformed.
        var isJws = TryReadPayload(request, out var payload, out var problem);
        if (!isJws && problem != NotAJws)
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, problem, LedgerHead.Empty);
        }
        // A treasury payout message (binary, tagged "SVP1": never a JSON payload) is judged as a
        // settlement; only a node that allows raw signing signs one without a justification (by hand).
        var settlement = isJws ? TreasuryPayoutMessage.TryRead(payload!) : null;
        if (settlement is not null && request.Justification is null && _options.AllowRawSigning)
        {
            settlement = null;
        }

        var instruction = isJws && settlement is null ? PayoutInstruction.TryRead(payload!) : null;
        var checkpoint = isJws && instruction is null && settlement is null ? ReadCheckpoint(payload!) : null;
        if (instruction is null && checkpoint is null && settlement is null)
        {
            // A raw message: nothing in a ledger can justify it.
            return _options.AllowRawSigning
                ? GuardDecision.Allow("raw signing is allowed on this node", LedgerHead.Empty)
                : GuardDecision.Refuse(GuardRefusal.RawSigningDisabled, "neither a payout instruction nor a checkpoint, and this node signs nothing else", LedgerHead.Empty);
        }

        if (request.Justification is not { } justification)
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, "a payout or checkpoint request carries a justification", LedgerHead.Empty);
        }

        var pool = Text(justification["pool"]);
        if (!Identifier.IsValid(pool))
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, "the justification names no valid pool", LedgerHead.Empty);
        }

        var head = _replicas.TryGetValue(pool!, out var known) ? known.Head : LedgerHead.Empty;
        var purpose = Text(justification["purpose"]);
        var expected = instruction is not null ? PayoutPurpose : settlement is not null ? SettlementPurpose : CheckpointPurpose;
        if (purpose != expected)
        {
            return GuardDecision.Refuse(GuardRefusal.UnknownPurpose, $"the justification's purpose is '{purpose}', the payload is a {expected}", head);
        }

        // A treasury message names no pool: the justification's pool is the one whose replica judges it.
        var payloadPool = instruction is not null ? Text(instruction["pool"]) : settlement is not null ? pool : Text(checkpoint!["pool"]);
        if (payloadPool != pool)
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, $"the payload is for pool '{payloadPool}', the justification for '{pool}'", head);
        }

        var (applied, refusal) = ApplySegment(pool!, request.Ledger);
        if (refusal is not null)
        {
            return refusal;
        }

        var registry = applied!.Registry;
        head = applied.Head;
        if (registry.Pool is null)
        {
            return GuardDecision.Refuse(GuardRefusal.StaleLedger, $"the node holds no ledger of pool '{pool}': send it from the start", head);
        }

        if (request.KeyName != registry.Pool.KeyName)
        {
            return GuardDecision.Refuse(GuardRefusal.Malformed, $"key '{request.KeyName}' is not pool '{pool}''s key", head);
        }

        return instruction is not null ? DecidePayout(applied, instruction, payload!, justification, head)
            : settlement is not null ? DecideSettlement(applied, settlement, payload!, justification, head)
            : DecideCheckpoint(registry, checkpoint!, head);
    }

    /// <summary>The JWS signing input's payload, after checking its header is {"alg":"RS256","kid":request.Kid}.</summary>
    private static bool TryReadPayload(GuardRequest request, out byte[]? payload, out string problem)
    {
        payload = null;
        problem = string.Empty;
        if (request.SigningInput is null || request.Kid is null || request.KeyName is null)
        {
            problem = "the request lacks its key, kid or signing input";
            return false;
        }

        var parts = Encoding.ASCII.GetString(request.SigningInput).Split('.');
        if (parts.Length != 2 || request.SigningInput.Any(b => b > 0x7F))
        {
            problem = NotAJws;
            return false;
        }

        try
        {
            var header = JsonNode.Parse(Base64Url.Decode(parts[0])) as JsonObject;
            if (header is null || Text(header["alg"]) != "RS256" || Text(header["kid"]) != request.Kid || header.Count != 2)
            {
                problem = "the signing input's JWS header is not {\"alg\":\"RS256\",\"kid\":KID} with the request's kid";
                return false;
            }

            payload = Base64Url.Decode(parts[1]);
            return true;
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            problem = "the signing input is not base64url JSON: " + e.Message;
            return false;
        }
    }

    /// <summary>A checkpoint payload: exactly {"hash","pool","seq","time"} in canonical form (<see cref="LedgerCheckpoint.Payload"/>); null otherwise.</summary>
    private static JsonObject? ReadCheckpoint(byte[] payload)
    {
        try
        {
            if (JsonNode.Parse(payload) is JsonObject json && json.Count == 4 && Text(json["hash"]) is { } hash && Text(json["pool"]) is { } pool
                && Number(json["seq"]) is { } seq && Text(json["time"]) is { } time
                && LedgerCheckpoint.Payload(pool, seq, hash, time).AsSpan().SequenceEqual(payload))
            {
                return json;
            }
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
        }

        return null;
    }

    /// <summary>Applies the segment to a copy of the replica; commits (fsync'd) only when every entry is accepted.</summary>
    private (PoolReplica? Replica, GuardDecision? Refusal) ApplySegment(string pool, JsonArray? segment)
    {
        if (!_replicas.TryGetValue(pool, out var replica))
        {
            replica = PoolReplica.Load(Path.Combine(_root, pool), pool, _options.AdminKeys);
        }

        var head = replica.Head;
        var next = replica.Registry.Clone();
        var appended = new List<LedgerEntry>();
        foreach (var node in segment ?? [])
        {
            if (!PoolRegistry.TryRead(pool, node, out var entry, out var problem))
            {
                return (null, GuardDecision.Refuse(GuardRefusal.Malformed, problem, head));
            }

            if (entry!.Sequence <= next.Sequence)
            {
                // An entry the node holds already: harmless when it is the same one (a resend), a fork otherwise.
                var known = entry.Sequence < 1 ? null
                    : entry.Sequence <= replica.Hashes.Count ? replica.Hashes[(int)entry.Sequence - 1] : appended[(int)(entry.Sequence - replica.Hashes.Count - 1)].Hash;
                if (known is null || known != entry.Hash || !SameHash(pool, entry))
                {
                    return (null, GuardDecision.Refuse(GuardRefusal.ForkedLedger, $"entry {entry.Sequence} differs from the node's entry {entry.Sequence}: the segment rewrites history", head));
                }

                continue;
            }

            if (entry.Sequence > next.Sequence + 1)
            {
                return (null, GuardDecision.Refuse(GuardRefusal.StaleLedger, $"the segment continues at entry {entry.Sequence}, the node's head is {next.Sequence}: send the entries after {head.Sequence}", head));
            }

            var step = next.Apply(entry);
            if (!step.Applied)
            {
                var reason = step.Refusal switch
                {
                    RegistryRefusal.NotAdminSigned => GuardRefusal.UnsignedRegistryChange,
                    RegistryRefusal.PreviousMismatch or RegistryRefusal.HashMismatch => GuardRefusal.ForkedLedger,
                    RegistryRefusal.NotNext => GuardRefusal.StaleLedger,
                    _ => GuardRefusal.Malformed,
                };
                return (null, GuardDecision.Refuse(reason, step.Detail, head));
            }

            appended.Add(entry);
        }

        replica.Commit(next, appended);
        _replicas[pool] = replica;
        return (replica, null);
    }

    private static bool SameHash(string pool, LedgerEntry entry)
    {
        try
        {
            return LedgerEntry.ComputeHash(pool, entry.Sequence, entry.Time, entry.Kind, entry.Body, entry.Previous) == entry.Hash;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static GuardDecision DecideCheckpoint(PoolRegistry registry, JsonObject checkpoint, LedgerHead head)
    {
        var seq = Number(checkpoint["seq"]);
        var hash = Text(checkpoint["hash"]);
        return seq == registry.Sequence && hash == registry.Head
            ? GuardDecision.Allow($"checkpoint at the node's head {seq}", head)
            : GuardDecision.Refuse(GuardRefusal.CheckpointNotHead, $"the checkpoint names entry {seq}, the node's verified head is {registry.Sequence} with another hash or sequence", head);
    }

    private GuardDecision DecidePayout(PoolReplica replica, JsonObject instruction, byte[] payload, JsonObject justification, LedgerHead head)
    {
        var registry = replica.Registry;
        var pool = registry.Pool!;
        GuardDecision Refuse(GuardRefusal reason, string detail) => GuardDecision.Refuse(reason, detail, head);

        var claimId = Text(instruction["claim"]);
        var amount = Number(instruction["amount"]);
        if (claimId is null || amount is null || instruction["evidence"] is not JsonArray evidenceHashes)
        {
            return Refuse(GuardRefusal.Malformed, "the instruction lacks its claim, amount or evidence");
        }

        // 1. Never a second payout: paid in the replica, or another instruction for it signed here.
        var instructionHash = Convert.ToHexStringLower(SHA256.HashData(payload));
        if (registry.Claims.TryGetValue(claimId, out var claim) && claim.Status == RegistryClaim.Paid)
        {
            return Refuse(GuardRefusal.AlreadyPaid, $"claim {claimId} is paid in the node's ledger");
        }

        var signedHere = replica.SignedInstruction(claimId);
        if (signedHere is not null && signedHere != instructionHash)
        {
            return Refuse(GuardRefusal.AlreadyPaid, $"this node already signed another instruction for claim {claimId}");
        }

        // 2. An opened and approved claim that the instruction describes exactly.
        if (claim is null)
        {
            return Refuse(GuardRefusal.TriggerNotMet, $"claim {claimId} was never opened in the node's ledger");
        }

        if (claim.Status != RegistryClaim.Approved)
        {
            return Refuse(GuardRefusal.TriggerNotMet, $"claim {claimId} is {claim.Status}, not approved");
        }

        var policy = registry.Policies[claim.PolicyId]; // the fold refuses a claim without its policy
        if (Text(instruction["member"]) != claim.MemberId || Text(instruction["policy"]) != claim.PolicyId || Text(instruction["device"]) != claim.DeviceId
            || Text(instruction["rule_hash"]) != claim.RuleHash || Text(instruction["currency"]) != pool.Currency
            || !evidenceHashes.Select(Text).SequenceEqual(claim.Evidence.Select(e => e.Sha256)))
        {
            return Refuse(GuardRefusal.Malformed, $"the instruction does not match claim {claimId}, its policy, currency or evidence");
        }

        // 3. Amounts: the claim's own, within the policy and the pool maximum, the node's limits, the balance.
        if (amount != claim.Amount || amount > policy.PayoutAmount || amount > pool.MaxPayout)
        {
            return Refuse(GuardRefusal.AmountAbovePolicy, $"amount {amount} for claim {claimId}: the claim says {claim.Amount}, policy {policy.Id} pays at most {policy.PayoutAmount}, the pool at most {pool.MaxPayout}");
        }

        if (amount > _options.MaxPerPayout)
        {
            return Refuse(GuardRefusal.AboveNodeLimit, $"amount {amount} is above this node's limit of {_options.MaxPerPayout} per payout");
        }

        var today = signedHere is null ? replica.DayTotal(_options.Time.GetUtcNow()) : 0; // a re-sign of the same instruction adds nothing
        if (today + amount > _options.MaxPerDay)
        {
            return Refuse(GuardRefusal.AboveNodeLimit, $"amount {amount} would bring today's (UTC) total to {today + amount}, above this node's limit of {_options.MaxPerDay}");
        }

        if (amount > registry.Balance)
        {
            return Refuse(GuardRefusal.InsufficientBalance, $"the pool's balance {registry.Balance} does not cover {amount}");
        }

        // 4. The evidence: every cited record verified under the enrolled key, the trigger recomputed over them.
        return CheckEvidence(registry, claim, policy, justification, head) ?? GuardDecision.Allow($"payout of {amount} {pool.Currency} for claim {claimId}: evidence verified, trigger recomputed", head);
    }

    /// <summary>
    /// A treasury payout message (docs/treasury.md; layout <see cref="TreasuryPayoutMessage"/>) is
    /// signed only when, in this node's replica: the pool is bound to a treasury by an admin-signed
    /// <c>treasury</c> entry and the message names its chain id, contract and token; the claim is paid
    /// by a payout entry whose JWS verifies under the pool's JWKS (committed by the admin-signed
    /// <c>pool_created</c> entry) over that claim's instruction; the amount is the claim's in token
    /// units; the recipient is the member's admin-signed payout address; and the claim is neither
    /// settled nor signed here for another message. The same message again (a retry after a crash) is
    /// signed again: the contract pays a claim once.
    /// </summary>
    private static GuardDecision DecideSettlement(PoolReplica replica, TreasuryPayoutMessage message, byte[] payload, JsonObject justification, LedgerHead head)
    {
        var registry = replica.Registry;
        var pool = registry.Pool!;
        GuardDecision Refuse(GuardRefusal reason, string detail) => GuardDecision.Refuse(reason, detail, head);

        var claimId = Text(justification["claim"]);
        if (claimId is null || !TreasuryPayoutMessage.HashClaim(claimId).AsSpan().SequenceEqual(message.ClaimHash))
        {
            return Refuse(GuardRefusal.Malformed, "the justification's claim is missing or is not the claim the treasury message names");
        }

        // 1. The treasury the admin bound the pool to: chain id, contract, token.
        if (registry.Treasury is not { } treasury)
        {
            return Refuse(GuardRefusal.WrongTreasury, $"pool {pool.Id} is bound to no treasury in the node's ledger (an admin-signed treasury entry, written by 'chain deploy')");
        }

        if (message.ChainId != treasury.ChainId)
        {
            return Refuse(GuardRefusal.WrongTreasury, $"the message is for chain id {message.ChainId}, the pool's treasury is on {treasury.Caip2}");
        }

        if (!TreasuryPayoutMessage.SameAddress(message.Treasury, treasury.Address))
        {
            return Refuse(GuardRefusal.WrongTreasury, $"the message names treasury {message.Treasury}, the pool's treasury is {treasury.Address}");
        }

        if (!TreasuryPayoutMessage.SameAddress(message.Token, treasury.Token))
        {
            return Refuse(GuardRefusal.WrongTreasury, $"the message pays in token {message.Token}, the pool's treasury holds {treasury.Token}");
        }

        // 2. A claim paid by a payout the pool key signed, not settled yet.
        if (!registry.Claims.TryGetValue(claimId, out var claim) || claim.Status != RegistryClaim.Paid)
        {
            return Refuse(GuardRefusal.ClaimNotPaid, $"claim {claimId} is {(claim is null ? "not in" : claim.Status + " in")} the node's ledger, not paid");
        }

        if (CheckPayoutSignature(registry, claim, justification) is { } unsigned)
        {
            return Refuse(GuardRefusal.ClaimNotPaid, unsigned);
        }

        if (registry.Settled.ContainsKey(claimId))
        {
            return Refuse(GuardRefusal.AlreadySettled, $"claim {claimId} is settled in the node's ledger");
        }

        var signedHere = replica.SignedSettlement(claimId);
        if (signedHere is not null && signedHere != Convert.ToHexStringLower(SHA256.HashData(payload)))
        {
            return Refuse(GuardRefusal.AlreadySettled, $"this node already signed another treasury message for claim {claimId}");
        }

        // 3. The claim's amount, to the member's registered address.
        var units = claim.Amount * treasury.UnitsPerMinorUnit;
        if (message.Amount != units)
        {
            return Refuse(GuardRefusal.WrongAmount, $"the message pays {message.Amount} token units for claim {claimId}, its payout is {claim.Amount} {pool.Currency} = {units} units");
        }

        if (!registry.PayoutAddresses.TryGetValue(claim.MemberId, out var address))
        {
            return Refuse(GuardRefusal.WrongRecipient, $"member {claim.MemberId} has registered no payout address in the node's ledger");
        }

        if (!TreasuryPayoutMessage.SameAddress(message.To, address))
        {
            return Refuse(GuardRefusal.WrongRecipient, $"the message pays {message.To}, member {claim.MemberId}'s payout address is {address.ToLowerInvariant()}");
        }

        return GuardDecision.Allow($"settlement of claim {claimId}: {units} units of {treasury.Token} to {address.ToLowerInvariant()} by treasury {treasury.Address} on {treasury.Caip2}", head);
    }

    /// <summary>Null when the claim's payout entry carries a JWS that verifies under the pool's JWKS over the claim's own instruction; else why not.</summary>
    private static string? CheckPayoutSignature(PoolRegistry registry, RegistryClaim claim, JsonObject justification)
    {
        if (!registry.PayoutSignatures.TryGetValue(claim.Id, out var jws) || !Jws.TryParse(jws, out var parts))
        {
            return $"the payout entry of claim {claim.Id} carries no JWS";
        }

        if (justification["jwks"] is not JsonObject jwks || Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(jwks))) != registry.Pool!.JwksSha256)
        {
            return "the justification's JWKS is not the pool's (its SHA-256 differs from the pool_created entry's jwks_sha256)";
        }

        try
        {
            var key = (jwks["keys"] as JsonArray ?? []).OfType<JsonObject>().FirstOrDefault(k => Text(k["kid"]) == parts.Kid);
            if (key is null || parts.Algorithm != "RS256" || !Jws.Verify(parts, RsaPublicKey.FromJwk(key)))
            {
                return $"the payout JWS of claim {claim.Id} does not verify under the pool's key";
            }
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or CryptographicException)
        {
            return $"the pool's JWKS does not hold an RSA key for kid {parts.Kid}";
        }

        var instruction = PayoutInstruction.TryRead(parts.Payload);
        return instruction is not null && Text(instruction["pool"]) == registry.PoolId && Text(instruction["claim"]) == claim.Id && Number(instruction["amount"]) == claim.Amount
            ? null
            : $"the payout JWS of claim {claim.Id} is not over that claim's instruction";
    }

    private static GuardDecision? CheckEvidence(PoolRegistry registry, RegistryClaim claim, RegistryPolicy policy, JsonObject justification, LedgerHead head)
    {
        GuardDecision Refuse(GuardRefusal reason, string detail) => GuardDecision.Refuse(reason, detail, head);
        if (!registry.Devices.TryGetValue(claim.DeviceId, out var device))
        {
            return Refuse(GuardRefusal.UnknownDevice, $"device {claim.DeviceId} is not enrolled in the node's ledger");
        }

        if (justification["device_keys"] is not JsonObject keys || Text(keys[claim.DeviceId]) is not { } pem)
        {
            return Refuse(GuardRefusal.UnknownDevice, $"the justification carries no key for device {claim.DeviceId}");
        }

        using var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256 || Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo())) != device.KeySha256)
            {
                return Refuse(GuardRefusal.UnknownDevice, $"the key given for device {claim.DeviceId} is not the one its admin-signed enrolment names");
            }
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException)
        {
            return Refuse(GuardRefusal.UnknownDevice, $"the key given for device {claim.DeviceId} is not a P-256 public key PEM");
        }

        var records = new Dictionary<long, byte[]>();
        if (justification["evidence"] is not JsonArray cited)
        {
            return Refuse(GuardRefusal.BadEvidence, "the justification cites no evidence");
        }

        foreach (var item in cited)
        {
            if (item is not JsonObject record || Text(record["device"]) is not { } id || Number(record["seq"]) is not { } seq || Text(record["cose"]) is not { } cose)
            {
                return Refuse(GuardRefusal.Malformed, "an evidence item is not {device, seq, cose}");
            }

            if (id != claim.DeviceId)
            {
                return Refuse(GuardRefusal.BadEvidence, $"the justification cites evidence of device {id}, the claim is device {claim.DeviceId}'s");
            }

            try
            {
                if (!records.TryAdd(seq, Base64Url.Decode(cose)))
                {
                    return Refuse(GuardRefusal.BadEvidence, $"evidence {id}#{seq} is cited twice");
                }
            }
            catch (FormatException)
            {
                return Refuse(GuardRefusal.Malformed, $"evidence {id}#{seq} is not base64url");
            }
        }

        PayoutReplayResult replayed;
        try
        {
            var context = RuleContextJson.Read(policy.Context);
            // A rule decided on the clock (an absence) is recomputed at the claim_opened entry's time in the node's ledger.
            DateTimeOffset? decidedAt = DateTimeOffset.TryParse(claim.OpenedTime, System.Globalization.CultureInfo.InvariantCulture,
                System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var opened) ? opened : null;
            replayed = PayoutReplay.Check(claim.DeviceId, key, policy.Rule, context, claim.Evidence, seq => records.GetValueOrDefault(seq), "the justification",
                precededBy: claim.PrecededBy, decidedAt: decidedAt);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            return Refuse(GuardRefusal.Malformed, $"policy {policy.Id} cannot be evaluated: {e.Message}");
        }

        return replayed.Problem switch
        {
            null => null,
            PayoutReplayProblem.NotFired => Refuse(GuardRefusal.TriggerNotMet, replayed.Detail),
            PayoutReplayProblem.RuleDoesNotParse => Refuse(GuardRefusal.Malformed, replayed.Detail),
            _ => Refuse(GuardRefusal.BadEvidence, replayed.Detail),
        };
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static long? Number(JsonNode? node) => node is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;
}
