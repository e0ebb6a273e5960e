using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Rules;

namespace ShareVault.Claims.Ledger;

/// <summary>The pool as its <c>pool_created</c> entry describes it; <see cref="AdminKeys"/> are the administrators recorded for it (none: an unadministered local pool).</summary>
public sealed record RegistryPool(string Id, string Name, string Currency, string KeyName, string JwksSha256, long MaxPayout, IReadOnlyList<AdminKey> AdminKeys);

/// <summary>A policy as its <c>policy_issued</c> entry (at <paramref name="IssuedAt"/>) describes it; <paramref name="Context"/> is its places/windows JSON.</summary>
public sealed record RegistryPolicy(string Id, string MemberId, string Rule, string RuleHash, long PayoutAmount, int VotesRequired, JsonObject Context, long IssuedAt);

/// <summary>A device as its <c>device_enrolled</c> entry describes it: the SHA-256 (hex) of its SubjectPublicKeyInfo DER.</summary>
public sealed record RegistryDevice(string Id, string MemberId, string KeySha256, long EnrolledAt);

/// <summary>
/// The pool's on-chain treasury as its latest <c>treasury</c> entry binds it: chain id, contract and
/// token addresses (lower-case hex), token units per minor unit of the pool's currency.
/// </summary>
public sealed record RegistryTreasury(long ChainId, string Address, string Token, System.Numerics.BigInteger UnitsPerMinorUnit, long BoundAt)
{
    /// <summary>CAIP-2 chain reference as ledger entries write it.</summary>
    public string Caip2 => "eip155:" + ChainId.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Where a claim stands in the ledger; the text is <c>ClaimStatus</c>'s (opened, approved, declined, paid).</summary>
/// <paramref name="PrecededBy"/>: the record before the first that the claim names (<see cref="ClaimPredecessor"/>), or null.
public sealed record RegistryClaim(string Id, string PolicyId, string MemberId, string DeviceId, long Amount, string RuleHash, IReadOnlyList<(long Seq, string Sha256)> Evidence, string Status, long OpenedAt,
    (long Seq, string Sha256)? PrecededBy = null, string? OpenedTime = null)
{
    public const string Opened = "opened";
    public const string Approved = "approved";
    public const string Declined = "declined";
    public const string Paid = "paid";
}

/// <summary>Why <see cref="PoolRegistry.Apply"/> refused an entry.</summary>
public enum RegistryRefusal
{
    /// <summary>Its sequence number is not the head's + 1.</summary>
    NotNext,

    /// <summary>Its <c>prev</c> is not the head's hash: it forks the chain.</summary>
    PreviousMismatch,

    /// <summary>Its hash is not the SHA-256 of its canonical fields: it was altered.</summary>
    HashMismatch,

    /// <summary>A field is missing or of the wrong type, or the kind is unknown.</summary>
    Malformed,

    /// <summary>It contradicts the registry (an unknown member, policy, device or claim; an id used twice; a payout for a claim not approved).</summary>
    Inconsistent,

    /// <summary>A registry change without a valid signature by a required admin key.</summary>
    NotAdminSigned,

    /// <summary>A member action (join, policy acceptance, device enrolment, vote) of a member who holds a key, without a valid signature by that key.</summary>
    NotMemberSigned,
}

/// <summary>A vote as its <c>vote</c> entry (at <paramref name="Sequence"/>) records it.</summary>
public sealed record RegistryVote(string MemberId, bool Approve, long Sequence);

/// <summary>The outcome of one <see cref="PoolRegistry.Apply"/>: applied, or refused with a reason and a detail that names ids (never secrets).</summary>
public sealed record RegistryStep(bool Applied, RegistryRefusal? Refusal, string Detail)
{
    public static RegistryStep Ok { get; } = new(true, null, "applied");

    public static RegistryStep Refuse(RegistryRefusal refusal, string detail) => new(false, refusal, detail);
}

/// <summary>
/// A fold over one pool's chained ledger entries, in order, yielding the registry they imply: the
/// pool, members, policies, enrolled devices, balance (premiums − payouts) and claims. Each
/// <see cref="Apply"/> first checks that the entry extends the head (sequence, <c>prev</c>,
/// recomputed hash, as <see cref="LedgerEntry.ComputeHash"/>), then that it is consistent with the
/// registry so far, and only then changes anything: a refused entry leaves the registry as it was.
/// <para>Admin signatures (<see cref="AdminSignature"/>): with <c>requiredAdmins</c> given (a custody
/// node's configured keys) every registry change (pool, policy, device, premium) must be signed by one of them; without, the keys the
/// <c>pool_created</c> entry records are required once it records any (a pool without admin keys
/// keeps working unsigned).</para>
/// Untrusted input: every problem is a <see cref="RegistryStep"/>, never an exception.
/// </summary>
public sealed class PoolRegistry
{
    private readonly Dictionary<string, string> _members;
    private readonly Dictionary<string, RegistryPolicy> _policies;
    private readonly Dictionary<string, RegistryDevice> _devices;
    private readonly Dictionary<string, RegistryClaim> _claims;
    private readonly HashSet<string> _premiumRefs;
    private readonly Dictionary<string, MemberKey> _memberKeys;
    private readonly HashSet<string> _accepted;
    private readonly Dictionary<string, List<RegistryVote>> _votes;
    private readonly Dictionary<string, string> _payoutAddresses;
    private readonly Dictionary<string, long> _settled;
    private readonly Dictionary<string, string> _payoutJws;
    private readonly IReadOnlyList<AdminKey>? _requiredAdmins;

    /// <param name="poolId">The pool whose entries this folds (entries carry no pool id; it is part of their hash).</param>
    /// <param name="requiredAdmins">When given, the only keys whose signatures make a registry change valid.</param>
    public PoolRegistry(string poolId, IReadOnlyList<AdminKey>? requiredAdmins = null)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        PoolId = poolId;
        _requiredAdmins = requiredAdmins;
        _members = new(StringComparer.Ordinal);
        _policies = new(StringComparer.Ordinal);
        _devices = new(StringComparer.Ordinal);
        _claims = new(StringComparer.Ordinal);
        _premiumRefs = new(StringComparer.Ordinal);
        _memberKeys = new(StringComparer.Ordinal);
        _accepted = new(StringComparer.Ordinal);
        _votes = new(StringComparer.Ordinal);
        _payoutAddresses = new(StringComparer.Ordinal);
        _settled = new(StringComparer.Ordinal);
        _payoutJws = new(StringComparer.Ordinal);
    }

    private PoolRegistry(PoolRegistry other)
    {
        PoolId = other.PoolId;
        _requiredAdmins = other._requiredAdmins;
        _members = new(other._members, StringComparer.Ordinal);
        _policies = new(other._policies, StringComparer.Ordinal);
        _devices = new(other._devices, StringComparer.Ordinal);
        _claims = new(other._claims, StringComparer.Ordinal);
        _premiumRefs = new(other._premiumRefs, StringComparer.Ordinal);
        _memberKeys = new(other._memberKeys, StringComparer.Ordinal);
        _accepted = new(other._accepted, StringComparer.Ordinal);
        _votes = other._votes.ToDictionary(v => v.Key, v => new List<RegistryVote>(v.Value), StringComparer.Ordinal);
        _payoutAddresses = new(other._payoutAddresses, StringComparer.Ordinal);
        _settled = new(other._settled, StringComparer.Ordinal);
        _payoutJws = new(other._payoutJws, StringComparer.Ordinal);
        Pool = other.Pool;
        Treasury = other.Treasury;
        Sequence = other.Sequence;
        Head = other.Head;
        Premiums = other.Premiums;
        PaidOut = other.PaidOut;
    }

    public string PoolId { get; }

    /// <summary>The last applied entry's sequence number (0 before the first).</summary>
    public long Sequence { get; private set; }

    /// <summary>The last applied entry's hash (<see cref="LedgerEntry.Genesis"/> before the first).</summary>
    public string Head { get; private set; } = LedgerEntry.Genesis;

    /// <summary>Null until the <c>pool_created</c> entry (always entry 1).</summary>
    public RegistryPool? Pool { get; private set; }

    /// <summary>Member id → name.</summary>
    public IReadOnlyDictionary<string, string> Members => _members;

    public IReadOnlyDictionary<string, RegistryPolicy> Policies => _policies;

    public IReadOnlyDictionary<string, RegistryDevice> Devices => _devices;

    public IReadOnlyDictionary<string, RegistryClaim> Claims => _claims;

    /// <summary>The keys members recorded when they joined (members without one are absent).</summary>
    public IReadOnlyDictionary<string, MemberKey> MemberKeys => _memberKeys;

    /// <summary>Ids of the policies their members accepted (<c>policy_accepted</c>).</summary>
    public IReadOnlySet<string> AcceptedPolicies => _accepted;

    /// <summary>The votes cast on a claim, in ledger order (empty when none).</summary>
    public IReadOnlyList<RegistryVote> VotesOn(string claimId) => _votes.TryGetValue(claimId, out var votes) ? votes : [];

    /// <summary>The treasury the latest admin-signed <c>treasury</c> entry binds the pool to; null before one.</summary>
    public RegistryTreasury? Treasury { get; private set; }

    /// <summary>Member id → the address on-chain payouts go to (<c>payout_address</c>).</summary>
    public IReadOnlyDictionary<string, string> PayoutAddresses => _payoutAddresses;

    /// <summary>Claim id → the compact JWS its <c>payout</c> entry carries (the pool key's signature over the payout instruction; the fold does not verify it: it knows no key).</summary>
    public IReadOnlyDictionary<string, string> PayoutSignatures => _payoutJws;

    /// <summary>Claim id → the sequence number of its <c>payout_settled</c> entry.</summary>
    public IReadOnlyDictionary<string, long> Settled => _settled;

    /// <summary>Sum of the premium entries.</summary>
    public long Premiums { get; private set; }

    /// <summary>Sum of the payout entries' amounts.</summary>
    public long PaidOut { get; private set; }

    public long Balance => Premiums - PaidOut;

    /// <summary>A copy to apply entries to tentatively (the original does not change).</summary>
    public PoolRegistry Clone() => new(this);

    /// <summary>Folds <paramref name="entries"/> from genesis; stops at the first refused one (returned with its sequence number).</summary>
    public static (PoolRegistry Registry, RegistryStep? Refused, long RefusedAt) Fold(string poolId, IEnumerable<LedgerEntry> entries, IReadOnlyList<AdminKey>? requiredAdmins = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var registry = new PoolRegistry(poolId, requiredAdmins);
        foreach (var entry in entries)
        {
            var step = registry.Apply(entry);
            if (!step.Applied)
            {
                return (registry, step, entry.Sequence);
            }
        }

        return (registry, null, 0);
    }

    /// <summary>
    /// Reads one exported entry (<see cref="LedgerEntry.ToJson"/>: <c>{seq,time,kind,body,prev,hash}</c>) of
    /// this pool; false with the reason when a field is missing or mistyped.
    /// </summary>
    public static bool TryRead(string poolId, JsonNode? json, out LedgerEntry? entry, out string problem)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        entry = null;
        if (json is not JsonObject e)
        {
            problem = "a ledger entry is not a JSON object";
            return false;
        }

        try
        {
            entry = new LedgerEntry(poolId, JsonFields.Int64(e["seq"], "$.seq"), JsonFields.String(e["time"], "$.time"), JsonFields.String(e["kind"], "$.kind"),
                JsonFields.Object(e["body"], "$.body").DeepClone().AsObject(), JsonFields.String(e["prev"], "$.prev"), JsonFields.String(e["hash"], "$.hash"));
            problem = string.Empty;
            return true;
        }
        catch (FormatException x)
        {
            problem = "malformed ledger entry: " + x.Message;
            return false;
        }
    }

    /// <summary>Applies the next entry, or refuses it and changes nothing.</summary>
    public RegistryStep Apply(LedgerEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Sequence != Sequence + 1)
        {
            return RegistryStep.Refuse(RegistryRefusal.NotNext, $"entry {entry.Sequence} does not follow the head at {Sequence}");
        }

        if (!string.Equals(entry.Previous, Head, StringComparison.Ordinal))
        {
            return RegistryStep.Refuse(RegistryRefusal.PreviousMismatch, $"entry {entry.Sequence}: prev does not match the hash of entry {Sequence}");
        }

        string hash;
        try
        {
            hash = LedgerEntry.ComputeHash(PoolId, entry.Sequence, entry.Time, entry.Kind, entry.Body, entry.Previous);
        }
        catch (ArgumentException e)
        {
            return RegistryStep.Refuse(RegistryRefusal.Malformed, $"entry {entry.Sequence}: not canonical JSON ({e.Message})");
        }

        if (!string.Equals(hash, entry.Hash, StringComparison.Ordinal))
        {
            return RegistryStep.Refuse(RegistryRefusal.HashMismatch, $"entry {entry.Sequence}: hash mismatch (the entry was altered)");
        }

        RegistryStep step;
        try
        {
            step = ApplyBody(entry);
        }
        catch (FormatException e)
        {
            step = RegistryStep.Refuse(RegistryRefusal.Malformed, $"entry {entry.Sequence} ({entry.Kind}): {e.Message}");
        }

        if (step.Applied)
        {
            Sequence = entry.Sequence;
            Head = entry.Hash;
        }

        return step;
    }

    // Each case validates everything first and mutates last, so a refusal leaves the registry unchanged.
    private RegistryStep ApplyBody(LedgerEntry entry)
    {
        var body = entry.Body;
        var seq = entry.Sequence;
        if (Pool is null && entry.Kind != LedgerEntry.PoolCreated)
        {
            return Inconsistent(seq, $"the first entry must be {LedgerEntry.PoolCreated}, not {entry.Kind}");
        }

        if (AdminSignature.IsRegistryChange(entry.Kind) && CheckAdmin(entry) is { } adminUnsigned)
        {
            return adminUnsigned;
        }

        switch (entry.Kind)
        {
            case LedgerEntry.PoolCreated:
                {
                    if (Pool is not null)
                    {
                        return Inconsistent(seq, "the pool is created twice");
                    }

                    var pool = ReadPool(body);
                    if (pool.Id != PoolId)
                    {
                        return Inconsistent(seq, $"pool_created names pool '{pool.Id}', not '{PoolId}'");
                    }

                    if (_requiredAdmins is null && pool.AdminKeys.Count > 0 && AdminSignature.Verify(PoolId, entry.Kind, body, pool.AdminKeys) is var check && check != AdminCheck.Valid)
                    {
                        return RegistryStep.Refuse(RegistryRefusal.NotAdminSigned, $"entry {seq} (pool_created): not signed by one of the admin keys it records ({check})");
                    }

                    Pool = pool;
                    return RegistryStep.Ok;
                }

            case LedgerEntry.MemberJoined:
                {
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var name = JsonFields.String(body["name"], "$.body.name");
                    if (_members.ContainsKey(member))
                    {
                        return Inconsistent(seq, $"member '{member}' joins twice");
                    }

                    // A key recorded at joining signs the join itself (proof of possession) and every later action of the member.
                    var key = MemberKey.ReadFrom(body, "$.body");
                    if (key is not null && CheckMember(entry, member, key) is { } notSigned)
                    {
                        return notSigned;
                    }

                    _members[member] = name;
                    if (key is not null)
                    {
                        _memberKeys[member] = key;
                    }

                    return RegistryStep.Ok;
                }

            case LedgerEntry.PolicyAccepted:
                {
                    var id = JsonFields.String(body["policy"], "$.body.policy");
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var ruleHash = JsonFields.String(body["rule_hash"], "$.body.rule_hash");
                    if (!_policies.TryGetValue(id, out var policy) || policy.MemberId != member || policy.RuleHash != ruleHash)
                    {
                        return Inconsistent(seq, $"member '{member}' accepts policy '{id}', which is not issued to them with this rule hash");
                    }

                    if (_accepted.Contains(id))
                    {
                        return Inconsistent(seq, $"policy '{id}' is accepted twice");
                    }

                    if (MemberSigned(entry, member) is { } notSigned)
                    {
                        return notSigned;
                    }

                    _accepted.Add(id);
                    return RegistryStep.Ok;
                }

            case LedgerEntry.Vote:
                {
                    var id = JsonFields.String(body["claim"], "$.body.claim");
                    var member = JsonFields.String(body["member"], "$.body.member");
                    if (body["approve"] is not JsonValue approveNode || !approveNode.TryGetValue<bool>(out var approve))
                    {
                        throw new FormatException("$.body.approve is missing or not true/false");
                    }

                    if (!_claims.TryGetValue(id, out var claim) || claim.Status != RegistryClaim.Opened)
                    {
                        return Inconsistent(seq, $"a vote on claim '{id}', which is not open");
                    }

                    if (!_members.ContainsKey(member) || member == claim.MemberId)
                    {
                        return Inconsistent(seq, $"'{member}' may not vote on claim '{id}' (not a member, or its claimant)");
                    }

                    if (VotesOn(id).Any(v => v.MemberId == member))
                    {
                        return Inconsistent(seq, $"member '{member}' votes twice on claim '{id}'");
                    }

                    if (MemberSigned(entry, member) is { } notSigned)
                    {
                        return notSigned;
                    }

                    if (!_votes.TryGetValue(id, out var votes))
                    {
                        _votes[id] = votes = [];
                    }

                    votes.Add(new RegistryVote(member, approve, seq));
                    return RegistryStep.Ok;
                }

            case LedgerEntry.PolicyIssued:
                {
                    var id = JsonFields.String(body["policy"], "$.body.policy");
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var rule = JsonFields.String(body["rule"], "$.body.rule");
                    var ruleHash = JsonFields.String(body["rule_hash"], "$.body.rule_hash");
                    var amount = JsonFields.Int64(body["payout_amount"], "$.body.payout_amount");
                    var votes = JsonFields.Int64(body["votes_required"], "$.body.votes_required");
                    var context = JsonFields.Object(body["context"], "$.body.context");
                    _ = RuleContextJson.Read(context);
                    if (!_members.ContainsKey(member))
                    {
                        return Inconsistent(seq, $"policy '{id}' for unknown member '{member}'");
                    }

                    if (_policies.ContainsKey(id))
                    {
                        return Inconsistent(seq, $"policy '{id}' is issued twice");
                    }

                    if (!TriggerRule.TryParse(rule, out var parsed, out var reason) || parsed!.Text != rule)
                    {
                        return Inconsistent(seq, $"policy '{id}': the rule is not a canonical rule text ({reason ?? "not canonical"})");
                    }

                    if (ruleHash != Sha256Hex(rule))
                    {
                        return Inconsistent(seq, $"policy '{id}': rule_hash is not the SHA-256 of the rule");
                    }

                    if (amount <= 0 || votes is < 0 or > int.MaxValue)
                    {
                        return Inconsistent(seq, $"policy '{id}': payout_amount must be positive and votes_required not negative");
                    }

                    _policies[id] = new RegistryPolicy(id, member, rule, ruleHash, amount, (int)votes, context.DeepClone().AsObject(), seq);
                    return RegistryStep.Ok;
                }

            case LedgerEntry.DeviceEnrolled:
                {
                    var id = JsonFields.String(body["device"], "$.body.device");
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var keyHash = JsonFields.String(body["key_sha256"], "$.body.key_sha256");
                    if (!_members.ContainsKey(member))
                    {
                        return Inconsistent(seq, $"device '{id}' for unknown member '{member}'");
                    }

                    if (MemberSigned(entry, member) is { } notSigned)
                    {
                        return notSigned;
                    }

                    if (_devices.ContainsKey(id))
                    {
                        return Inconsistent(seq, $"device '{id}' is enrolled twice");
                    }

                    if (keyHash.Length != 64 || !keyHash.All(char.IsAsciiHexDigitLower))
                    {
                        return Inconsistent(seq, $"device '{id}': key_sha256 is not a lower-case SHA-256 hex");
                    }

                    _devices[id] = new RegistryDevice(id, member, keyHash, seq);
                    return RegistryStep.Ok;
                }

            case LedgerEntry.Premium:
                {
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var amount = JsonFields.Int64(body["amount"], "$.body.amount");
                    if (!_members.ContainsKey(member) || amount <= 0)
                    {
                        return Inconsistent(seq, $"a premium of {amount} from '{member}' (unknown member or not positive)");
                    }

                    // A payment reference counts once: an admin signature over one premium cannot be replayed as another.
                    if (body["ref"] is { } reference && !_premiumRefs.Add(JsonFields.String(reference, "$.body.ref")))
                    {
                        return Inconsistent(seq, $"a second premium with payment reference '{reference}'");
                    }

                    Premiums = checked(Premiums + amount);
                    return RegistryStep.Ok;
                }

            case LedgerEntry.ClaimOpened:
                {
                    var id = JsonFields.String(body["claim"], "$.body.claim");
                    var policyId = JsonFields.String(body["policy"], "$.body.policy");
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var device = JsonFields.String(body["device"], "$.body.device");
                    var ruleHash = JsonFields.String(body["rule_hash"], "$.body.rule_hash");
                    var amount = JsonFields.Int64(body["amount"], "$.body.amount");
                    var evidence = JsonFields.Objects(body["evidence"], "$.body.evidence")
                        .Select(x => (Seq: JsonFields.Int64(x.Item["seq"], x.Path + ".seq"), Sha256: JsonFields.String(x.Item["sha256"], x.Path + ".sha256"))).ToList();
                    if (_claims.ContainsKey(id))
                    {
                        return Inconsistent(seq, $"claim '{id}' is opened twice");
                    }

                    if (!_policies.TryGetValue(policyId, out var policy) || policy.MemberId != member || policy.RuleHash != ruleHash)
                    {
                        return Inconsistent(seq, $"claim '{id}' does not match a policy of member '{member}' with its rule hash");
                    }

                    if (!_devices.TryGetValue(device, out var enrolled) || enrolled.MemberId != member)
                    {
                        return Inconsistent(seq, $"claim '{id}' names device '{device}', which is not enrolled for member '{member}'");
                    }

                    if (evidence.Count == 0 || amount <= 0)
                    {
                        return Inconsistent(seq, $"claim '{id}' lists no evidence or a non-positive amount");
                    }

                    var precededBy = ClaimPredecessor.Read(body, "$.body", evidence[0].Seq);
                    _claims[id] = new RegistryClaim(id, policyId, member, device, amount, ruleHash, evidence, RegistryClaim.Opened, seq, precededBy, entry.Time);
                    return RegistryStep.Ok;
                }

            case LedgerEntry.Decision:
                {
                    var id = JsonFields.String(body["claim"], "$.body.claim");
                    var decision = JsonFields.String(body["decision"], "$.body.decision");
                    if (!_claims.TryGetValue(id, out var claim) || claim.Status != RegistryClaim.Opened)
                    {
                        return Inconsistent(seq, $"a decision on claim '{id}', which is not open");
                    }

                    if (decision is not (RegistryClaim.Approved or RegistryClaim.Declined))
                    {
                        return Inconsistent(seq, $"claim '{id}': '{decision}' is not a decision");
                    }

                    if (CheckTally(seq, id, claim, decision, body) is { } untallied)
                    {
                        return untallied;
                    }

                    _claims[id] = claim with { Status = decision };
                    return RegistryStep.Ok;
                }

            case LedgerEntry.Payout:
                {
                    var id = JsonFields.String(body["claim"], "$.body.claim");
                    var amount = JsonFields.Int64(body["amount"], "$.body.amount");
                    var currency = JsonFields.String(body["currency"], "$.body.currency");
                    if (!_claims.TryGetValue(id, out var claim) || claim.Status != RegistryClaim.Approved)
                    {
                        return Inconsistent(seq, $"payout for '{id}' without an opened and approved, unpaid claim before it");
                    }

                    if (amount != claim.Amount || currency != Pool!.Currency)
                    {
                        return Inconsistent(seq, $"payout for '{id}': amount or currency differs from the claim");
                    }

                    var jws = body["jws"] is null ? null : JsonFields.String(body["jws"], "$.body.jws");
                    _claims[id] = claim with { Status = RegistryClaim.Paid };
                    PaidOut = checked(PaidOut + amount);
                    if (jws is not null)
                    {
                        _payoutJws[id] = jws;
                    }
                    return RegistryStep.Ok;
                }

            case LedgerEntry.PayoutAddress:
                {
                    var member = JsonFields.String(body["member"], "$.body.member");
                    var address = JsonFields.String(body["address"], "$.body.address");
                    if (!_members.ContainsKey(member))
                    {
                        return Inconsistent(seq, $"a payout address for unknown member '{member}'");
                    }

                    if (!IsChainAddress(address))
                    {
                        return Inconsistent(seq, $"payout address of '{member}' is not a 0x-prefixed 20-byte hex address");
                    }

                    _payoutAddresses[member] = address;
                    return RegistryStep.Ok;
                }

            case LedgerEntry.PayoutSettled:
                {
                    var id = JsonFields.String(body["claim"], "$.body.claim");
                    var to = JsonFields.String(body["to"], "$.body.to");
                    _ = JsonFields.String(body["tx"], "$.body.tx");
                    _ = JsonFields.Int64(body["block"], "$.body.block");
                    if (!_claims.TryGetValue(id, out var claim) || claim.Status != RegistryClaim.Paid)
                    {
                        return Inconsistent(seq, $"payout_settled for '{id}' without a signed payout before it");
                    }

                    if (_settled.ContainsKey(id))
                    {
                        return Inconsistent(seq, $"claim '{id}' is settled twice");
                    }

                    if (!_payoutAddresses.TryGetValue(claim.MemberId, out var registered) || !string.Equals(registered, to, StringComparison.OrdinalIgnoreCase))
                    {
                        return Inconsistent(seq, $"claim '{id}' was settled to {to}, not to the payout address member '{claim.MemberId}' registered");
                    }

                    // Once the pool is bound to a treasury, a settlement must be that treasury's, of the claim's amount in its token units.
                    if (Treasury is { } bound)
                    {
                        var chain = JsonFields.String(body["chain"], "$.body.chain");
                        var treasury = JsonFields.String(body["treasury"], "$.body.treasury");
                        var token = JsonFields.String(body["token"], "$.body.token");
                        var units = JsonFields.String(body["amount"], "$.body.amount");
                        if (chain != bound.Caip2 || !string.Equals(treasury, bound.Address, StringComparison.OrdinalIgnoreCase) || !string.Equals(token, bound.Token, StringComparison.OrdinalIgnoreCase))
                        {
                            return Inconsistent(seq, $"claim '{id}' was settled on {chain} by {treasury} in {token}, not by the treasury the pool is bound to ({bound.Caip2} {bound.Address} {bound.Token})");
                        }

                        if (!System.Numerics.BigInteger.TryParse(units, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var paidUnits)
                            || paidUnits != claim.Amount * bound.UnitsPerMinorUnit)
                        {
                            return Inconsistent(seq, $"claim '{id}' was settled for {units} token units, not its {claim.Amount} minor units × {bound.UnitsPerMinorUnit}");
                        }
                    }

                    _settled[id] = seq;
                    return RegistryStep.Ok;
                }

            case LedgerEntry.Treasury:
                {
                    var treasury = ReadTreasury(body, seq);
                    if (treasury is null)
                    {
                        return Inconsistent(seq, "a treasury entry whose chain is not eip155:ID, whose addresses are not 20-byte hex, or whose units per minor unit are not a positive integer");
                    }

                    Treasury = treasury;
                    return RegistryStep.Ok;
                }

            default:
                return RegistryStep.Refuse(RegistryRefusal.Malformed, $"entry {seq}: unknown kind '{entry.Kind}'");
        }
    }

    /// <summary>
    /// A decision by the rule needs a policy that asks for no votes; a decision by votes names its
    /// <c>vote</c> entries (<c>"votes"</c>: their sequence numbers), each on this claim and of the
    /// decided side, at least the policy's votes_required of them. A decision by votes without
    /// <c>"votes"</c> was written before votes were ledger entries: accepted only while no vote on the
    /// claim is in the ledger (the checkpoint over the head vouches that it was not rewritten).
    /// </summary>
    private RegistryStep? CheckTally(long seq, string claimId, RegistryClaim claim, string decision, JsonObject body)
    {
        var by = body["by"] is null ? null : JsonFields.String(body["by"], "$.body.by");
        var required = _policies.TryGetValue(claim.PolicyId, out var policy) ? policy.VotesRequired : 0;
        if (by == "rule")
        {
            return required == 0 ? null : Inconsistent(seq, $"claim '{claimId}' is decided by the rule, but its policy asks for {required} vote(s)");
        }

        if (by != "votes")
        {
            return null;
        }

        var cast = VotesOn(claimId);
        if (body["votes"] is null)
        {
            return cast.Count == 0 ? null : Inconsistent(seq, $"the decision on claim '{claimId}' does not name the votes it counts");
        }

        var named = JsonFields.Array(body["votes"], "$.body.votes").Select((n, i) => JsonFields.Int64(n, $"$.body.votes[{i}]")).ToList();
        var approve = decision == RegistryClaim.Approved;
        if (named.Distinct().Count() != named.Count || named.Any(n => !cast.Any(v => v.Sequence == n && v.Approve == approve)))
        {
            return Inconsistent(seq, $"the decision on claim '{claimId}' names entries that are not distinct votes to {(approve ? "approve" : "decline")} it");
        }

        return named.Count >= required ? null : Inconsistent(seq, $"claim '{claimId}' is {decision} by {named.Count} vote(s); its policy asks for {required}");
    }

    /// <summary>The member's signature, required when the member recorded a key at joining.</summary>
    private RegistryStep? MemberSigned(LedgerEntry entry, string memberId) =>
        _memberKeys.TryGetValue(memberId, out var key) ? CheckMember(entry, memberId, key) : null;

    private RegistryStep? CheckMember(LedgerEntry entry, string memberId, MemberKey key)
    {
        var check = MemberSignature.Verify(PoolId, entry.Kind, entry.Body, key);
        return check == MemberCheck.Valid
            ? null
            : RegistryStep.Refuse(RegistryRefusal.NotMemberSigned, $"entry {entry.Sequence} ({entry.Kind}): no valid signature by member '{memberId}' ({check})");
    }

    /// <summary>An EVM address as text: 0x and 40 hex digits (either case; EIP-55 checksums are not required).</summary>
    public static bool IsChainAddress(string text) =>
        text is { Length: 42 } && text.StartsWith("0x", StringComparison.Ordinal) && text.AsSpan(2).ToArray().All(char.IsAsciiHexDigit);

    private RegistryStep? CheckAdmin(LedgerEntry entry)
    {
        // pool_created with no required keys is checked against the keys it records itself (above).
        var keys = _requiredAdmins ?? (entry.Kind == LedgerEntry.PoolCreated ? null : Pool?.AdminKeys);
        if (keys is null || (_requiredAdmins is null && keys.Count == 0))
        {
            return null;
        }

        var check = AdminSignature.Verify(PoolId, entry.Kind, entry.Body, keys);
        return check == AdminCheck.Valid
            ? null
            : RegistryStep.Refuse(RegistryRefusal.NotAdminSigned, $"entry {entry.Sequence} ({entry.Kind}): no valid admin signature ({check})");
    }

    /// <summary>The body a <c>treasury</c> entry carries (and an administrator signs).</summary>
    public static JsonObject TreasuryBody(long chainId, string treasury, string token, System.Numerics.BigInteger unitsPerMinorUnit) => new()
    {
        ["chain"] = "eip155:" + chainId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["treasury"] = treasury.ToLowerInvariant(),
        ["token"] = token.ToLowerInvariant(),
        ["units_per_minor_unit"] = unitsPerMinorUnit.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static RegistryTreasury? ReadTreasury(JsonObject body, long seq)
    {
        var chain = JsonFields.String(body["chain"], "$.body.chain");
        var address = JsonFields.String(body["treasury"], "$.body.treasury");
        var token = JsonFields.String(body["token"], "$.body.token");
        var units = JsonFields.String(body["units_per_minor_unit"], "$.body.units_per_minor_unit");
        if (!chain.StartsWith("eip155:", StringComparison.Ordinal)
            || !long.TryParse(chain.AsSpan(7), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var chainId)
            || !IsChainAddress(address) || !IsChainAddress(token)
            || !System.Numerics.BigInteger.TryParse(units, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var perMinor) || perMinor.Sign <= 0)
        {
            return null;
        }

        return new RegistryTreasury(chainId, address.ToLowerInvariant(), token.ToLowerInvariant(), perMinor, seq);
    }

    private static RegistryPool ReadPool(JsonObject body)
    {
        var admins = new List<AdminKey>();
        if (body["admin_keys"] is { } listed)
        {
            foreach (var (pem, path) in JsonFields.Array(listed, "$.body.admin_keys").Select((n, i) => (n, $"$.body.admin_keys[{i}]")))
            {
                admins.Add(AdminKey.FromPem(JsonFields.String(pem, path)));
            }
        }

        return new RegistryPool(JsonFields.String(body["pool"], "$.body.pool"), JsonFields.String(body["name"], "$.body.name"), JsonFields.String(body["currency"], "$.body.currency"),
            JsonFields.String(body["key"], "$.body.key"), JsonFields.String(body["jwks_sha256"], "$.body.jwks_sha256"), JsonFields.Int64(body["max_payout"], "$.body.max_payout"), admins);
    }

    private static RegistryStep Inconsistent(long seq, string detail) => RegistryStep.Refuse(RegistryRefusal.Inconsistent, $"entry {seq}: {detail}");

    private static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
