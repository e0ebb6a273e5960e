using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Node.Audit;
using ShareVault.Node.Certificates;
using ShareVault.TestSupport;

namespace ShareVault.Node.Tests.Server;

/// <summary>
/// Three real custody nodes on loopback, each a <c>sharevault node run</c> child process: two on
/// SoftHSM tokens of the class's own, one on a swtpm of its own. A CA, node server certificates and
/// a coordinator client certificate are made with <see cref="NodeCertificates"/>; the coordinator
/// (this process) opens no token, it talks to the nodes only. Without an admin key the nodes sign
/// raw messages (<c>--allow-raw-signing</c>, what the raw-signing tests need); with one they run as
/// in production: <c>--admin-key</c> and no raw signing, so they sign only payouts and checkpoints
/// their guard allows.
/// </summary>
public abstract class NodeNetwork : IAsyncLifetime
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "sharevault.dll");
    private readonly Swtpm _tpm = new();
    private readonly List<ChildProcess> _nodes = [];

    private readonly string? _adminKeyPem;

    /// <param name="adminKeyPem">The pool administrator's public key (SPKI PEM) the nodes trust; null: raw signing allowed, no admin.</param>
    protected NodeNetwork(string tokenA, string tokenB, string tpmObject, string? adminKeyPem = null)
    {
        _adminKeyPem = adminKeyPem;
        Names = [tokenA, tokenB, tpmObject];
        Root = Directory.CreateTempSubdirectory("sv-nodes-").FullName;
        CertDir = Path.Combine(Root, "certs");
        CoordinatorDir = Path.Combine(Root, "coordinator");
        Ports = [LoopbackPorts.Reserve(), LoopbackPorts.Reserve(), LoopbackPorts.Reserve()];
        HardwareUris = [SoftHsm.Shared.Uri(tokenA), SoftHsm.Shared.Uri(tokenB), _tpm.Uri(tpmObject)];
    }

    public IReadOnlyList<string> Names { get; }

    public string Root { get; }

    public string CertDir { get; }

    public string CoordinatorDir { get; }

    public IReadOnlyList<int> Ports { get; }

    public IReadOnlyList<string> HardwareUris { get; }

    public IReadOnlyList<ChildProcess> Nodes => _nodes;

    public string NodeDataDir(int i) => Path.Combine(Root, "node-" + Names[i]);

    /// <summary>Node <paramref name="node"/>'s audit log, read from its data folder, its hash chain verified.</summary>
    public List<JsonObject> VerifiedAudit(int node)
    {
        var text = File.ReadAllText(Path.Combine(NodeDataDir(node), AuditLog.FileName));
        var check = AuditLog.Verify(text);
        Assert.True(check.BrokenLine is null, $"audit log of {Names[node]} broken at line {check.BrokenLine}: {check.Reason}");
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject())];
    }

    /// <summary>A node custodian URI with the coordinator's certificate (or another's) and the node CA.</summary>
    public string NodeUri(int i, string certDir = "", string coordinator = "coordinator") =>
        $"https://127.0.0.1:{Ports[i]}?custodian={Names[i]}&client-cert={Path.Combine(certDir.Length == 0 ? CertDir : certDir, coordinator + ".pem")}"
        + $"&client-key={Path.Combine(certDir.Length == 0 ? CertDir : certDir, coordinator + ".key")}&node-ca={Path.Combine(CertDir, "ca.pem")}";

    public virtual async Task InitializeAsync()
    {
        NodeCertificates.Create(CertDir, Names, "coordinator", null, TimeProvider.System);
        if (_adminKeyPem is not null)
        {
            await File.WriteAllTextAsync(AdminKeyPath, _adminKeyPem);
        }

        for (var i = 0; i < Names.Count; i++)
        {
            _nodes.Add(Start(i));
        }

        foreach (var node in _nodes)
        {
            await node.WaitForLineAsync(l => l.Contains("listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "the node's listening line");
        }
    }

    private string AdminKeyPath => Path.Combine(Root, "admin.pem");

    private ChildProcess Start(int i) => ChildProcess.Start("node-" + Names[i], "dotnet",
        [
            Dll, "node", "run", "--data-dir", NodeDataDir(i), "--custodian", HardwareUris[i], "--listen", $"127.0.0.1:{Ports[i]}",
            "--cert", Path.Combine(CertDir, Names[i] + ".pem"), "--cert-key", Path.Combine(CertDir, Names[i] + ".key"),
            "--client-ca", Path.Combine(CertDir, "ca.pem"), .. _adminKeyPem is null ? ["--allow-raw-signing"] : new[] { "--admin-key", AdminKeyPath },
        ],
        new Dictionary<string, string?> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });

    /// <summary>A product-RSA key whose three member keys are born inside the nodes' hardware.</summary>
    public KeyRecord CreateKey(string name, int threshold = 2)
    {
        using var stores = CustodianStores.Open(CoordinatorDir);
        return new ProductRsaCeremony(stores, new KeyCatalog(CoordinatorDir), TimeProvider.System)
            .Create(name, threshold, 2048, [.. Names.Select((_, i) => NodeUri(i))]);
    }

    public virtual Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            node.Dispose();
        }

        _tpm.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Left for the temp cleaner.
        }

        return Task.CompletedTask;
    }
}

/// <summary>The three-node network of <see cref="CustodyNodeTests"/>.</summary>
public sealed class ThreeNodes() : NodeNetwork("node-a", "node-b", "node-t");

/// <summary>The network of <see cref="NodeFailureTests"/>, whose nodes get killed.</summary>
public sealed class FailingNodes() : NodeNetwork("node-d", "node-e", "node-u");
