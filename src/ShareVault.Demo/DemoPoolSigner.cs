using System.Text.Json.Nodes;
using ShareVault.Claims.Payouts;

namespace ShareVault.Demo;

/// <summary>
/// The demo's choice of signers, as <c>--signers</c> would make it: payouts go to the first quorum
/// of nodes that answers, checkpoints to the quorum with the TPM custodian, so every run shows the
/// TPM node computing partials for requests it judged itself.
/// </summary>
internal sealed class DemoPoolSigner(IPoolSigner payouts, IPoolSigner checkpoints) : IPoolSigner
{
    public Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken) =>
        (request.Purpose == PoolSigningRequest.CheckpointPurpose ? checkpoints : payouts).SignAsync(request, cancellationToken);

    public JsonObject Jwks(string keyName) => payouts.Jwks(keyName);

    public bool Exists(string keyName) => payouts.Exists(keyName);
}
