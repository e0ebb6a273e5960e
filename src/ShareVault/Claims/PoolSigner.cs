using System.Text.Json.Nodes;
using ShareVault.Keys;
using ShareVault.Threshold;

namespace ShareVault.Claims;

/// <summary>Signs payout instructions and ledger checkpoints with a pool's threshold key.</summary>
internal interface IPoolSigner
{
    /// <summary>A compact JWS (RS256) over <paramref name="payload"/> and the kid that signed it.</summary>
    Task<(string Jws, string Kid)> SignAsync(string keyName, byte[] payload, CancellationToken cancellationToken);

    /// <summary>The key's verification keys as an RFC 7517 JWK Set.</summary>
    JsonObject Jwks(string keyName);

    /// <summary>Whether the key exists (checked when a pool is created).</summary>
    bool Exists(string keyName);
}

/// <summary>The real signer: the key catalog in the data folder and the threshold signer (every partial inside a custodian's hardware).</summary>
internal sealed class ThresholdPoolSigner(KeyCatalog catalog, ThresholdSigner signer) : IPoolSigner
{
    public async Task<(string Jws, string Kid)> SignAsync(string keyName, byte[] payload, CancellationToken cancellationToken)
    {
        var record = catalog.Load(keyName);
        var (jws, signature) = await signer.SignJwsAsync(record, payload, null, cancellationToken).ConfigureAwait(false);
        return (jws, signature.Kid);
    }

    public JsonObject Jwks(string keyName) => KeyPublication.ToJwks(KeyPublication.PublicKeys(catalog.Load(keyName)));

    public bool Exists(string keyName) => catalog.Exists(keyName);
}
