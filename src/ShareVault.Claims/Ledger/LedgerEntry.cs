using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// One ledger entry. Its hash is SHA-256 over the RFC 8785 canonical JSON of
/// <c>{"body":…,"kind":…,"pool":…,"prev":…,"seq":…,"time":…}</c>; <c>prev</c> is the previous entry's
/// hash in lower-case hex (64 zeros for the first), so changing any entry changes every later hash.
/// </summary>
public sealed record LedgerEntry(string Pool, long Sequence, string Time, string Kind, JsonObject Body, string Previous, string Hash)
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    public const string PoolCreated = "pool_created";
    public const string MemberJoined = "member_joined";
    public const string PolicyIssued = "policy_issued";
    public const string DeviceEnrolled = "device_enrolled";
    public const string Premium = "premium";
    public const string ClaimOpened = "claim_opened";
    public const string Decision = "decision";
    public const string Payout = "payout";

    /// <summary>A member accepts a policy issued to them, signed by the member (<see cref="MemberSignature"/>).</summary>
    public const string PolicyAccepted = "policy_accepted";

    /// <summary>A member's vote on a claim, signed by the member; a decision by votes names its vote entries.</summary>
    public const string Vote = "vote";

    /// <summary>A member's address for on-chain payouts (<c>{"member","address"}</c>; admin-signed in an administered pool).</summary>
    public const string PayoutAddress = "payout_address";

    /// <summary>
    /// A signed payout settled on chain by the pool's treasury contract: <c>{"claim","chain","treasury",
    /// "token","to","amount","tx","block"}</c> (chain as CAIP-2 <c>eip155:ID</c>; amount in token units, as text).
    /// </summary>
    public const string PayoutSettled = "payout_settled";

    /// <summary>
    /// The pool's on-chain treasury (admin-signed in an administered pool, written by <c>chain deploy</c>):
    /// <c>{"chain","treasury","token","units_per_minor_unit"}</c> (chain as CAIP-2 <c>eip155:ID</c>;
    /// token units per minor unit as text). Custody nodes sign treasury payout messages only for it.
    /// </summary>
    public const string Treasury = "treasury";

    public static string ComputeHash(string pool, long sequence, string time, string kind, JsonObject body, string previous)
    {
        var canonical = CanonicalJson.Serialize(new JsonObject
        {
            ["body"] = body.DeepClone(),
            ["kind"] = kind,
            ["pool"] = pool,
            ["prev"] = previous,
            ["seq"] = sequence,
            ["time"] = time,
        });
        return Convert.ToHexStringLower(SHA256.HashData(canonical));
    }

    public static LedgerEntry Create(string pool, long sequence, DateTimeOffset time, string kind, JsonObject body, string previous)
    {
        var stamp = FormatTime(time);
        return new LedgerEntry(pool, sequence, stamp, kind, body, previous, ComputeHash(pool, sequence, stamp, kind, body, previous));
    }

    /// <summary>RFC 3339 UTC with milliseconds: one spelling per instant, so hashes are reproducible.</summary>
    public static string FormatTime(DateTimeOffset time) =>
        time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public JsonObject ToJson() => new()
    {
        ["seq"] = Sequence,
        ["time"] = Time,
        ["kind"] = Kind,
        ["body"] = Body.DeepClone(),
        ["prev"] = Previous,
        ["hash"] = Hash,
    };
}

/// <summary>
/// A checkpoint: the pool's threshold key signs, as a JWS, the canonical JSON
/// <c>{"hash":…,"pool":…,"seq":…,"time":…}</c> naming the ledger head at <c>seq</c>.
/// </summary>
public sealed record LedgerCheckpoint(string Pool, long Sequence, string Hash, string Time, string Jws)
{
    public static byte[] Payload(string pool, long sequence, string hash, string time) =>
        CanonicalJson.Serialize(new JsonObject { ["hash"] = hash, ["pool"] = pool, ["seq"] = sequence, ["time"] = time });
}
