using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;

namespace ShareVault.Node.Guard;

/// <summary>
/// How a node's guard is configured: where it keeps its replicas (<c>DataDir/replica/</c>), the
/// pool administrators' public keys it trusts for registry changes (keys the coordinator does not
/// hold; <see cref="AdminKey.FromPem"/> reads <c>--admin-key FILE.pem</c>), its own limits in the
/// pool's minor units (per payout, per UTC day), whether it signs anything that is neither a payout,
/// a checkpoint nor a treasury payout message (raw <c>sharevault sign</c> messages), and its clock (for the UTC day).
/// </summary>
public sealed record GuardOptions(string DataDir, IReadOnlyList<AdminKey> AdminKeys, long MaxPerPayout, long MaxPerDay, bool AllowRawSigning, TimeProvider Time);

/// <summary>A pool ledger's head: its last sequence number and hash; (0, 64 zeros) before the first entry.</summary>
public sealed record LedgerHead(long Sequence, string Hash)
{
    public static LedgerHead Empty { get; } = new(0, LedgerEntry.Genesis);
}

/// <summary>
/// One request to sign: the threshold key and kid, the exact bytes the key would sign (a JWS signing
/// input <c>BASE64URL(header).BASE64URL(payload)</c>, ShareVault.Hardware.Jws.SigningInput), the
/// coordinator's justification (evidence, device keys; built by ShareVault.Claims) and the ledger
/// entries after the node's head (<see cref="LedgerEntry.ToJson"/>). All of it is untrusted.
/// </summary>
public sealed record GuardRequest(string KeyName, string Kid, byte[] SigningInput, JsonObject? Justification, JsonArray? Ledger);

/// <summary>Whether the node signs, and if not why (<see cref="Refusal"/> and a <see cref="Detail"/> naming ids, never secrets); the node's head after the request's ledger segment.</summary>
public sealed record GuardDecision(bool Allowed, GuardRefusal? Refusal, string Detail, LedgerHead Head)
{
    public static GuardDecision Allow(string detail, LedgerHead head) => new(true, null, detail, head);

    public static GuardDecision Refuse(GuardRefusal refusal, string detail, LedgerHead head) => new(false, refusal, detail, head);
}

/// <summary>Why a node's guard refused to sign.</summary>
public enum GuardRefusal
{
    /// <summary>The request, its signing input, justification or ledger segment is not of the expected shape.</summary>
    Malformed,

    /// <summary>The segment starts after the node's head (a gap): resend from <see cref="GuardDecision.Head"/>.</summary>
    StaleLedger,

    /// <summary>The segment rewrites or forks history the node already holds (a different entry at a known sequence, a broken chain).</summary>
    ForkedLedger,

    /// <summary>A registry change (pool, policy, device, premium) carries no valid signature by an admin key configured on the node.</summary>
    UnsignedRegistryChange,

    /// <summary>Evidence of a device the replica has not enrolled, or whose justified key does not hash to the enrolled key.</summary>
    UnknownDevice,

    /// <summary>Cited evidence is missing, does not verify under the device key, or is not the claim's.</summary>
    BadEvidence,

    /// <summary>The policy's trigger, recomputed over the cited evidence, does not fire with exactly the claim's records.</summary>
    TriggerNotMet,

    /// <summary>The instruction's amount exceeds the policy's amount or the pool's maximum, or differs from the claim.</summary>
    AmountAbovePolicy,

    /// <summary>The amount exceeds this node's limit per payout or per UTC day.</summary>
    AboveNodeLimit,

    /// <summary>The pool's balance in the replica (premiums − payouts) does not cover the amount.</summary>
    InsufficientBalance,

    /// <summary>The claim is paid in the replica or was already signed by this node.</summary>
    AlreadyPaid,

    /// <summary>A checkpoint names a (seq, hash) that is not the replica's head after the segment.</summary>
    CheckpointNotHead,

    /// <summary>The justification names a purpose other than payout, checkpoint or settlement, or one that does not match the payload.</summary>
    UnknownPurpose,

    /// <summary>Neither a payout instruction nor a checkpoint, and this node does not sign raw messages.</summary>
    RawSigningDisabled,

    /// <summary>A treasury payout message (purpose settlement) for a claim the replica does not hold as paid by a signed payout entry.</summary>
    ClaimNotPaid,

    /// <summary>A treasury payout message for a pool the replica binds to no treasury, or naming another chain id, treasury or token than the admin-signed <c>treasury</c> entry.</summary>
    WrongTreasury,

    /// <summary>A treasury payout message whose amount is not the claim's paid amount in the treasury's token units.</summary>
    WrongAmount,

    /// <summary>A treasury payout message whose recipient is not the member's admin-signed <c>payout_address</c> (or the member registered none).</summary>
    WrongRecipient,

    /// <summary>The claim is settled in the replica, or this node already signed a different treasury message for it.</summary>
    AlreadySettled,
}
