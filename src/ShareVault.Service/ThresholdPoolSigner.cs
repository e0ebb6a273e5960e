using System.Text.Json.Nodes;
using ShareVault.Claims.Payouts;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;

namespace ShareVault.Service;

/// <summary>The real signer: the key catalog in the data folder and the threshold signer (every partial inside a custodian's hardware).</summary>
public sealed class ThresholdPoolSigner(KeyCatalog catalog, ThresholdSigner signer) : IPoolSigner
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
