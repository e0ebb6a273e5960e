using System.Text.Json.Nodes;

namespace ShareVault.Claims.Payouts;

/// <summary>Signs payout instructions and ledger checkpoints with a pool's threshold key.</summary>
public interface IPoolSigner
{
    /// <summary>A compact JWS (RS256) over <paramref name="payload"/> and the kid that signed it.</summary>
    Task<(string Jws, string Kid)> SignAsync(string keyName, byte[] payload, CancellationToken cancellationToken);

    /// <summary>The key's verification keys as an RFC 7517 JWK Set.</summary>
    JsonObject Jwks(string keyName);

    /// <summary>Whether the key exists (checked when a pool is created).</summary>
    bool Exists(string keyName);
}
