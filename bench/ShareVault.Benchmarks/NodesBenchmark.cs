using System.Globalization;
using System.Security.Cryptography;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Node.Certificates;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Issue 12: 2-of-3 product-RSA signature latency through three custody node processes (mutual
/// TLS, guard, audit fsync, partials overlapping across processes), next to one partial through
/// one node and next to in-process signing on three SoftHSM tokens of this process. Interleaved,
/// so machine noise falls on every series alike. Those messages are raw (the nodes run with
/// --allow-raw-signing), so the guard's payout checks are not in them; a fourth series signs a
/// payout instruction of a real claims engine, which the nodes (also given --admin-key) check in
/// full (<see cref="GuardedPayout"/>).
/// </summary>
internal sealed class NodesBenchmark : IBenchmark
{
    public string Name => "nodes";

    public string Description => "2-of-3 latency through custody nodes vs one partial through a node vs in-process signing";

    public async Task RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200;
        var hsm = SoftHsm.Shared;
        var root = Directory.CreateTempSubdirectory("sv-bench-nodes-").FullName;
        string[] names = ["node-a", "node-b", "node-d"];
        var certs = Path.Combine(root, "certs");
        NodeCertificates.Create(certs, names, "coordinator", null, TimeProvider.System);
        using var admin = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var adminPem = Path.Combine(root, "admin.pem");
        await File.WriteAllTextAsync(adminPem, admin.ExportSubjectPublicKeyInfoPem());
        var ports = names.Select(_ => LoopbackPorts.Reserve()).ToArray();
        var dll = Path.Combine(AppContext.BaseDirectory, "sharevault.dll");
        var nodes = names.Select((n, i) => ChildProcess.Start(n, "dotnet",
            [
                dll, "node", "run", "--data-dir", Path.Combine(root, n), "--custodian", hsm.Uri(n), "--listen", $"127.0.0.1:{ports[i]}",
                "--cert", Path.Combine(certs, n + ".pem"), "--cert-key", Path.Combine(certs, n + ".key"), "--client-ca", Path.Combine(certs, "ca.pem"), "--allow-raw-signing", "--admin-key", adminPem,
            ],
            new Dictionary<string, string?> { ["SOFTHSM2_CONF"] = hsm.ConfPath })).ToList();
        try
        {
            foreach (var node in nodes)
            {
                await node.WaitForLineAsync(l => l.Contains("listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "listening");
            }

            var coordinatorDir = Path.Combine(root, "coordinator");
            using var remote = CustodianStores.Open(coordinatorDir);
            var uris = names.Select((n, i) => $"https://127.0.0.1:{ports[i]}?custodian={n}&client-cert={certs}/coordinator.pem&client-key={certs}/coordinator.key&node-ca={certs}/ca.pem").ToList();
            var catalog = new KeyCatalog(coordinatorDir);
            var nodeKey = new ProductRsaCeremony(remote, catalog, TimeProvider.System).Create("bench", 2, 2048, uris);

            var localDir = Path.Combine(root, "local");
            using var local = new ShareStoreRegistry(localDir);
            var localKey = new ProductRsaCeremony(local, new KeyCatalog(localDir), TimeProvider.System)
                .Create("bench", 2, 2048, [hsm.Uri("custody-a"), hsm.Uri("custody-b"), hsm.Uri("custody-c")]);

            var throughNodes = new ThresholdSigner(remote);
            var inProcess = new ThresholdSigner(local);
            var message = "payout: claim 1, 100 EUR"u8.ToArray();
            var quorum = nodeKey.Quorums[0];
            var math = QuorumMath.For(nodeKey, quorum);
            var first = (IJustifyingCustodian)remote.Get(new CustodianAddress(quorum.Members[0], nodeKey.Custodian(quorum.Members[0]).Uri, "bench", CustodianKind.Node));
            var onePartial = new JustifiedPartialRequest("bench", "bench", KeyScheme.ProductRsa, quorum.Kid, message, math.MemberKeys, null);
            var second = (IJustifyingCustodian)remote.Get(new CustodianAddress(quorum.Members[1], nodeKey.Custodian(quorum.Members[1]).Uri, "bench", CustodianKind.Node));
            var pair = new List<double>();
            await throughNodes.SignRawAsync(nodeKey, message, null, CancellationToken.None);
            await inProcess.SignRawAsync(localKey, message, null, CancellationToken.None);
            using var payout = await GuardedPayout.CreateAsync(Path.Combine(root, "claims"), admin, nodeKey, catalog, throughNodes);
            await payout.SignAsync(); // the nodes learn the pool's ledger

            Console.WriteLine($"nodes benchmark: 3 node processes (SoftHSM, RSA-2048 member keys, mutual TLS 1.3, audit fsync per partial), {count} interleaved rounds");
            var partial = new List<double>();
            var full = new List<double>();
            var inproc = new List<double>();
            var guarded = new List<double>();
            for (var i = 0; i < count; i++)
            {
                partial.AddRange(await Stats.LatenciesAsync(1, () => first.PartialAsync(onePartial, CancellationToken.None)));
                full.AddRange(await Stats.LatenciesAsync(1, () => throughNodes.SignRawAsync(nodeKey, message, null, CancellationToken.None)));
                inproc.AddRange(await Stats.LatenciesAsync(1, () => inProcess.SignRawAsync(localKey, message, null, CancellationToken.None)));
                guarded.AddRange(await Stats.LatenciesAsync(1, payout.SignAsync));
                pair.AddRange(await Stats.LatenciesAsync(1, () => Task.WhenAll(first.PartialAsync(onePartial, CancellationToken.None), second.PartialAsync(onePartial, CancellationToken.None))));
            }

            Console.WriteLine($"  one partial through one node (ms)     median {Stats.Median(partial),8:0.000}  p95 {Stats.Percentile(partial, 95):0.000}");
            Console.WriteLine($"  2-of-3 through nodes (ms)             median {Stats.Median(full),8:0.000}  p95 {Stats.Percentile(full, 95):0.000}");
            Console.WriteLine($"  2-of-3 in process, 3 tokens (ms)      median {Stats.Median(inproc),8:0.000}  p95 {Stats.Percentile(inproc, 95):0.000}");
            Console.WriteLine($"  2-of-3 guarded payout, nodes (ms)     median {Stats.Median(guarded),8:0.000}  p95 {Stats.Percentile(guarded, 95):0.000}  (15 COSE records verified, trigger recomputed per node)");
            Console.WriteLine($"  two partials at once, two nodes (ms)  median {Stats.Median(pair),8:0.000}  p95 {Stats.Percentile(pair, 95):0.000}  (no combine: how far two nodes overlap on this machine)");

            // Where a partial's time goes: CPU seconds of the node process and of this one per partial, next to its wall time.
            var partialNode = System.Diagnostics.Process.GetProcessById(nodes[names.ToList().IndexOf(quorum.Members[0])].Pid);
            var self = System.Diagnostics.Process.GetCurrentProcess();
            partialNode.Refresh();
            self.Refresh();
            var (nodeCpu, selfCpu) = (partialNode.TotalProcessorTime, self.TotalProcessorTime);
            var wall = await Stats.LatenciesAsync(count, () => first.PartialAsync(onePartial, CancellationToken.None));
            partialNode.Refresh();
            self.Refresh();
            Console.WriteLine($"  CPU per partial (ms): node {(partialNode.TotalProcessorTime - nodeCpu).TotalMilliseconds / count:0.000}, coordinator {(self.TotalProcessorTime - selfCpu).TotalMilliseconds / count:0.000}, wall {wall.Average():0.000}; {Environment.ProcessorCount} cores");
            Console.WriteLine($"  2-of-3 through nodes / one partial           {Stats.Median(full) / Stats.Median(partial),8:0.00}x  (aim <= 1.3x)");
            Console.WriteLine($"  2-of-3 through nodes / in process            {Stats.Median(full) / Stats.Median(inproc),8:0.00}x");
            Console.WriteLine($"  guarded payout / raw 2-of-3 through nodes    {Stats.Median(guarded) / Stats.Median(full),8:0.00}x");
        }
        finally
        {
            foreach (var node in nodes)
            {
                node.Dispose();
            }

            Directory.Delete(root, recursive: true);
        }
    }
}
