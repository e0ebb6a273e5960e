using System.Text.Json.Nodes;
using ShareVault.Claims.Payouts;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;

namespace ShareVault.Service;

/// <summary>
/// The real signer: the key catalog in the data folder and the threshold signer (every partial inside
/// a custodian's hardware). The request's justification and ledger travel to custody nodes, which
/// re-check them before their hardware signs; local custodians ignore them.
/// </summary>
public sealed class ThresholdPoolSigner(KeyCatalog catalog, ThresholdSigner signer) : IPoolSigner
{
    public async Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var record = catalog.Load(request.KeyName);
        var (jws, signature) = await signer.SignJwsAsync(record, request.Payload, null, new SigningContext(request.Justification, request.LedgerAfter), cancellationToken).ConfigureAwait(false);
        return (jws, signature.Kid);
    }

    public JsonObject Jwks(string keyName) => KeyPublication.ToJwks(KeyPublication.PublicKeys(catalog.Load(keyName)));

    public bool Exists(string keyName) => catalog.Exists(keyName);
}
