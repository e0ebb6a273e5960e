using System.Security.Cryptography;
using System.Text;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;

namespace ShareVault.Node.Tests.Server;

/// <summary>Nodes that stop answering: the coordinator names them and signs with a quorum of the others, and t-1 nodes cannot sign.</summary>
public sealed class NodeFailureTests(FailingNodes network) : IClassFixture<FailingNodes>
{
    private const int SigStop = 19;

    [Fact]
    public async Task One_node_killed_mid_request_leaves_a_quorum_that_signs_and_t_minus_1_nodes_cannot()
    {
        var record = network.CreateKey("fail-" + Guid.NewGuid().ToString("N")[..8]);
        var message = Encoding.UTF8.GetBytes("a payout while a node dies");
        using var stores = CustodianStores.Open(network.CoordinatorDir);
        var signer = new ThresholdSigner(stores, TimeSpan.FromSeconds(5));

        // Warm the coordinator's connections, then freeze node 0 (it accepts but never answers) and kill it while the request waits.
        _ = await signer.SignRawAsync(record, message, null, CancellationToken.None);
        network.Nodes[0].Signal(SigStop);
        var signing = signer.SignRawAsync(record, message, null, CancellationToken.None);
        await Task.Delay(300);
        network.Nodes[0].Kill();
        var signature = await signing;

        Assert.DoesNotContain(network.Names[0], signature.Signers);
        Assert.Contains(signature.Failures, f => f.Custodian == network.Names[0] && f.Reason is CustodianFailureReason.Unreachable or CustodianFailureReason.TimedOut);
        var key = KeyPublication.PublicKeys(record).Single(k => k.Kid == signature.Kid).Key;
        using (var rsa = key.ToRsa())
        {
            Assert.True(rsa.VerifyData(message, signature.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        }

        // With a second node gone only one of three answers: no quorum, and both silent nodes are named.
        network.Nodes[1].Kill();
        var refused = await Assert.ThrowsAsync<ThresholdSigningException>(() => signer.SignRawAsync(record, message, null, CancellationToken.None));
        Assert.Contains(refused.Failures, f => f.Custodian == network.Names[0]);
        Assert.Contains(refused.Failures, f => f.Custodian == network.Names[1]);
        Assert.DoesNotContain(refused.Failures, f => f.Custodian == network.Names[2]);
    }
}
