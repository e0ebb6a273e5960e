using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.TestSupport;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Node.Audit;
using ShareVault.Node.Certificates;

namespace ShareVault.Node.Tests.Server;

/// <summary>Three real node processes (two SoftHSM, one swtpm) and a coordinator that holds no PIN.</summary>
public sealed class CustodyNodeTests(ThreeNodes network) : IClassFixture<ThreeNodes>
{
    [Fact]
    public void A_key_created_through_the_nodes_is_born_in_each_nodes_hardware()
    {
        var record = network.CreateKey("born-" + Guid.NewGuid().ToString("N")[..8]);

        using var stores = CustodianStores.Open(network.CoordinatorDir);
        foreach (var custodian in record.Custodians)
        {
            Assert.Equal(CustodianKind.Node, custodian.Kind);
            var store = stores.Get(new CustodianAddress(custodian.Name, custodian.Uri, custodian.ObjectLabel, custodian.Kind));
            Assert.Contains(store.ListObjects(), o => o.Label == record.Name);
            Assert.Equal(ProductRsaKey.MemberKey(custodian), store.GetRsaPublicKey(record.Name));
        }
    }

    [Fact]
    public async Task A_message_signed_by_two_of_three_nodes_verifies_with_dotnet_and_openssl()
    {
        var record = network.CreateKey("sign-" + Guid.NewGuid().ToString("N")[..8]);
        var message = Encoding.UTF8.GetBytes("pay member-1 1200 EUR");
        using var stores = CustodianStores.Open(network.CoordinatorDir);

        var signature = await new ThresholdSigner(stores).SignRawAsync(record, message, null, CancellationToken.None);

        Assert.Equal(2, signature.Signers.Count);
        var key = KeyPublication.PublicKeys(record).Single(k => k.Kid == signature.Kid).Key;
        using (var rsa = key.ToRsa())
        {
            Assert.True(rsa.VerifyData(message, signature.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        }

        var dir = Directory.CreateTempSubdirectory("sv-node-openssl-").FullName;
        await File.WriteAllBytesAsync(Path.Combine(dir, "m"), message);
        await File.WriteAllBytesAsync(Path.Combine(dir, "s"), signature.Signature);
        await File.WriteAllTextAsync(Path.Combine(dir, "k.pem"), key.ToPem());
        var openssl = await CliRunner.OpenSslAsync("dgst", "-sha256", "-verify", Path.Combine(dir, "k.pem"), "-signature", Path.Combine(dir, "s"), Path.Combine(dir, "m"));
        Assert.True(openssl.ExitCode == 0, openssl.StdErr);
        Assert.Contains("Verified OK", openssl.StdOut, StringComparison.Ordinal);

        // Each signer's audit log holds the request: the hash of the signed bytes (not the bytes), the coordinator's thumbprint.
        var thumbprint = Convert.ToHexStringLower(SHA256.HashData(System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(
            await File.ReadAllTextAsync(Path.Combine(network.CertDir, "coordinator.pem"))).RawData));
        foreach (var signer in signature.Signers)
        {
            var lines = AuditLines(network.Names.ToList().IndexOf(signer));
            var line = lines.Last(l => l["op"]?.GetValue<string>() == "sign");
            Assert.Equal("signed", line["outcome"]!["result"]!.GetValue<string>());
            Assert.Equal(signature.Kid, line["request"]!["kid"]!.GetValue<string>());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(message)), line["request"]!["signing_input_sha256"]!.GetValue<string>());
            Assert.Equal(thumbprint, line["client"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task A_coordinator_whose_certificate_another_CA_issued_is_refused_at_TLS()
    {
        var other = Directory.CreateTempSubdirectory("sv-intruder-").FullName;
        NodeCertificates.Create(other, ["unused"], "intruder", null, TimeProvider.System);
        var before = AuditLines(0).Count;

        using var stores = CustodianStores.Open(other);
        var store = stores.Get(CustodianAddress.Parse(network.NodeUri(0, other, "intruder"), "k"));
        var refused = Assert.Throws<ShareStoreException>(() => store.ListObjects());
        Assert.Equal(ShareStoreError.DeviceUnreachable, refused.Error);

        // Without any client certificate the handshake fails too.
        using var ca = NodeTls.LoadCertificate(Path.Combine(network.CertDir, "ca.pem"));
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => NodeTls.ValidateServer(certificate, errors, ca);
        using var anonymous = new HttpClient(handler);
        await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.GetAsync(new Uri($"https://127.0.0.1:{network.Ports[0]}/v1/health")));

        // The trusted coordinator is served, and nothing of the refused ones reached the audit log.
        var trusted = stores.Get(CustodianAddress.Parse(network.NodeUri(0), "k"));
        Assert.NotNull(trusted.ListObjects());
        Assert.Equal(before, AuditLines(0).Count);
    }

    [Fact]
    public async Task The_audit_log_verifies_and_a_rewritten_line_is_named()
    {
        network.CreateKey("audit-" + Guid.NewGuid().ToString("N")[..8]);
        var dataDir = network.NodeDataDir(0);
        var verified = await CliRunner.RunAsync(dataDir, "node", "audit", "--verify");
        Assert.True(verified.ExitCode == 0, verified.StdErr);
        Assert.Contains("audit log intact", verified.StdErr, StringComparison.Ordinal);

        var copy = Directory.CreateTempSubdirectory("sv-audit-copy-").FullName;
        var lines = (await File.ReadAllTextAsync(Path.Combine(dataDir, AuditLog.FileName))).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var rewritten = JsonNode.Parse(lines[0])!.AsObject();
        rewritten["outcome"] = new JsonObject { ["result"] = "refused", ["code"] = "Malformed" };
        lines[0] = rewritten.ToJsonString();
        await File.WriteAllTextAsync(Path.Combine(copy, AuditLog.FileName), string.Join('\n', lines) + "\n");

        var broken = await CliRunner.RunAsync(copy, "node", "audit", "--verify");
        Assert.Equal(1, broken.ExitCode);
        Assert.Contains("broken at line 1: hash does not match", broken.StdErr, StringComparison.Ordinal);
    }

    private List<JsonObject> AuditLines(int node)
    {
        var path = Path.Combine(network.NodeDataDir(node), AuditLog.FileName);
        return [.. File.ReadAllLines(path).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!.AsObject())];
    }
}
