using System.Text.Json.Nodes;
using ShareVault.Claims.Payouts;

namespace ShareVault.Claims.TestSupport;

/// <summary>A pool signer that runs <see cref="BeforeSigning"/> once, before its first signature.</summary>
public sealed class SignerWithHook(IPoolSigner inner) : IPoolSigner
{
    public Func<Task>? BeforeSigning { get; set; }

    public async Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken)
    {
        if (BeforeSigning is { } hook)
        {
            BeforeSigning = null;
            await hook();
        }

        return await inner.SignAsync(request, cancellationToken);
    }

    public JsonObject Jwks(string keyName) => inner.Jwks(keyName);

    public bool Exists(string keyName) => inner.Exists(keyName);
}
