using System.Text.Json.Nodes;

namespace ShareVault.Claims.Payouts;

/// <summary>
/// What the pool's threshold key is asked to sign, and why: <paramref name="Payload"/> (a payout
/// instruction or a checkpoint, <paramref name="Purpose"/> "payout" or "checkpoint") with the
/// justification a custody node re-checks before its hardware signs (<c>{"pool","purpose",
/// "evidence":[{"device","seq","cose"}],"device_keys":{DEVICE: SPKI PEM}}</c>) and the ledger entries
/// after a given sequence number (<see cref="Ledger.LedgerEntry.ToJson"/>), from which a node brings
/// its replica up to date. Local custodians ignore all but the payload.
/// </summary>
public sealed record PoolSigningRequest(string KeyName, string PoolId, string Purpose, byte[] Payload, JsonObject Justification, Func<long, JsonArray> LedgerAfter)
{
    public const string PayoutPurpose = "payout";
    public const string CheckpointPurpose = "checkpoint";

    /// <summary>A treasury contract's payout message for a claim already paid in the ledger (docs/treasury.md).</summary>
    public const string SettlementPurpose = "settlement";
}

/// <summary>Signs payout instructions and ledger checkpoints with a pool's threshold key.</summary>
public interface IPoolSigner
{
    /// <summary>A compact JWS (RS256) over the request's payload and the kid that signed it.</summary>
    Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken);

    /// <summary>The key's verification keys as an RFC 7517 JWK Set.</summary>
    JsonObject Jwks(string keyName);

    /// <summary>Whether the key exists (checked when a pool is created).</summary>
    bool Exists(string keyName);
}
