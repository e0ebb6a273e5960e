using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Hardware;
using ShareVault.Node.Audit;
using ShareVault.Node.Certificates;

namespace ShareVault.Demo;

/// <summary>
/// The demo's custody network: one <c>sharevault node run</c> process per custodian, each holding
/// only its own custodian's PIN (or TPM auth value), listening with mutual TLS on a loopback port
/// chosen once (kept in <c>nodes/ports</c>: the pool key's custodian URIs name it), with certificates
/// made once in <c>certs/</c> and the pool administrator's public key. The claims service talks to
/// them through node URIs and opens no token. Every process is killed and waited for on
/// <see cref="Dispose"/>.
/// </summary>
internal sealed class DemoNodes : IDisposable
{
    public const string Coordinator = "coordinator";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly List<(string Custodian, Process Process, NodeOutput Output)> _running = [];
    private readonly Dictionary<string, int> _ports = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly string _outDir;
    private readonly IReadOnlyList<string> _custodians;

    public DemoNodes(string outDir, IReadOnlyList<string> custodians)
    {
        _outDir = outDir;
        _custodians = custodians;

        // Should the process exit without unwinding (Ctrl-C past the termination timeout), the nodes still die with it.
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    public string Root => Path.Combine(_outDir, "nodes");

    public string CertDir => Path.Combine(_outDir, "certs");

    private string PortsFile => Path.Combine(Root, "ports");

    public string DataDir(string custodian) => Path.Combine(Root, custodian);

    /// <summary>
    /// Certificates (a CA, one server certificate per node, the coordinator's client certificate)
    /// and ports, made on the first run and reused after; a kept port that another process holds is
    /// an error that says so.
    /// </summary>
    public string Prepare(TimeProvider time)
    {
        var made = !File.Exists(Path.Combine(CertDir, "ca.pem"));
        if (made)
        {
            NodeCertificates.Create(CertDir, _custodians, Coordinator, null, time);
        }

        Directory.CreateDirectory(Root);
        if (File.Exists(PortsFile))
        {
            foreach (var line in File.ReadAllLines(PortsFile).Where(l => l.Length > 0))
            {
                var parts = line.Split(' ');
                if (parts.Length != 2 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is <= 0 or >= 65536)
                {
                    throw new InvalidOperationException($"{PortsFile} line '{line}' is not 'CUSTODIAN PORT': run with --fresh");
                }

                _ports[parts[0]] = port;
            }

            foreach (var custodian in _custodians)
            {
                if (!_ports.TryGetValue(custodian, out var port))
                {
                    throw new InvalidOperationException($"{PortsFile} names no port for {custodian}: run with --fresh");
                }

                if (!LoopbackPorts.TryReserve(port))
                {
                    throw new InvalidOperationException(
                        $"node {custodian}'s port {port} on 127.0.0.1 is taken by another process; the pool key names that port, "
                        + "so stop whatever holds it, or run with --fresh to start over on new ports");
                }
            }
        }
        else
        {
            foreach (var custodian in _custodians)
            {
                _ports[custodian] = LoopbackPorts.Reserve();
            }

            File.WriteAllLines(PortsFile, _custodians.Select(c => $"{c} {_ports[c].ToString(CultureInfo.InvariantCulture)}"));
        }

        return (made ? "made" : "kept") + $" certificates in certs/ (CA, {string.Join(", ", _custodians)}, {Coordinator}); ports "
            + string.Join(", ", _custodians.Select(c => $"{c} {_ports[c]}"));
    }

    /// <summary>The custodian URI the coordinator uses for a node: its address, the client certificate and the node CA.</summary>
    public string NodeUri(string custodian) =>
        $"https://127.0.0.1:{_ports[custodian]}?custodian={custodian}&client-cert={Path.Combine(CertDir, Coordinator + ".pem")}"
        + $"&client-key={Path.Combine(CertDir, Coordinator + ".key")}&node-ca={Path.Combine(CertDir, "ca.pem")}";

    /// <summary>
    /// The nodes' pool replicas start over with the claims service's fresh state each run (their key
    /// material, TPM key blobs and audit logs stay: an audit log only grows).
    /// </summary>
    public void ResetReplicas()
    {
        foreach (var custodian in _custodians)
        {
            var replica = Path.Combine(DataDir(custodian), "replica");
            if (Directory.Exists(replica))
            {
                Directory.Delete(replica, recursive: true);
            }
        }
    }

    /// <summary>Starts every node on its hardware URI and waits for each to listen.</summary>
    /// <param name="hardware">Custodian → the PKCS#11 or TPM URI of its hardware (with its PIN source).</param>
    /// <param name="adminKeyPem">The pool administrator's public key file.</param>
    /// <param name="environment">Extra environment for the nodes (SOFTHSM2_CONF).</param>
    public async Task StartAsync(IReadOnlyDictionary<string, string> hardware, string adminKeyPem, IReadOnlyDictionary<string, string> environment,
        Action<string> report, CancellationToken cancellationToken)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "sharevault.dll");
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} not found: the demo starts its custody nodes with the sharevault CLI built beside it");
        }

        foreach (var custodian in _custodians)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[]
            {
                dll, "node", "run", "--data-dir", DataDir(custodian), "--custodian", hardware[custodian],
                "--listen", $"127.0.0.1:{_ports[custodian]}", "--cert", Path.Combine(CertDir, custodian + ".pem"),
                "--cert-key", Path.Combine(CertDir, custodian + ".key"), "--client-ca", Path.Combine(CertDir, "ca.pem"), "--admin-key", adminKeyPem,
            })
            {
                start.ArgumentList.Add(argument);
            }

            foreach (var (name, value) in environment)
            {
                start.Environment[name] = value;
            }

            var output = new NodeOutput();
            Process process;
            lock (_gate)
            {
                process = Process.Start(start) ?? throw new InvalidOperationException($"could not start node {custodian}");
                _running.Add((custodian, process, output));
            }

            process.OutputDataReceived += (_, e) => output.Add(e.Data);
            process.ErrorDataReceived += (_, e) => output.Add(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            report($"node {custodian}: pid {process.Id}, starting on 127.0.0.1:{_ports[custodian]}");
        }

        var deadline = Stopwatch.StartNew();
        foreach (var (custodian, process, output) in _running)
        {
            while (!output.IsListening)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"node {custodian} exited with {process.ExitCode} before listening: {output.Tail()}");
                }

                if (deadline.Elapsed > StartTimeout)
                {
                    throw new InvalidOperationException($"node {custodian} did not listen within {StartTimeout.TotalSeconds:0} s: {output.Tail()}");
                }

                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public IEnumerable<string> Describe() =>
        _running.Select(r => $"{r.Custodian}: pid {r.Process.Id}, https://127.0.0.1:{_ports[r.Custodian]} (mTLS), data in nodes/{r.Custodian}/");

    /// <summary>
    /// Copies each node's audit log to <c>audit/CUSTODIAN.jsonl</c> and checks its hash chain as
    /// <c>sharevault node audit --verify</c> does; returns what each log holds.
    /// </summary>
    public IReadOnlyList<AuditSummary> CollectAudit()
    {
        var dir = Directory.CreateDirectory(Path.Combine(_outDir, "audit")).FullName;
        var summaries = new List<AuditSummary>();
        foreach (var custodian in _custodians)
        {
            var source = Path.Combine(DataDir(custodian), AuditLog.FileName);
            var text = File.Exists(source) ? File.ReadAllText(source) : string.Empty;
            File.WriteAllText(Path.Combine(dir, custodian + ".jsonl"), text);
            var check = AuditLog.Verify(text);
            if (check.BrokenLine is { } broken)
            {
                throw new InvalidOperationException($"node {custodian}'s audit log is broken at line {broken}: {check.Reason}");
            }

            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
            bool Is(JsonObject line, string purpose, string result) =>
                line["request"]?["purpose"]?.GetValue<string>() == purpose && line["outcome"]?["result"]?.GetValue<string>() == result;
            summaries.Add(new AuditSummary(custodian, check.Lines,
                lines.Count(l => Is(l, "payout", "signed")), lines.Count(l => Is(l, "checkpoint", "signed")), lines.Count(l => Is(l, "settlement", "signed")),
                lines.Count(l => l["outcome"]?["result"]?.GetValue<string>() == "refused")));
        }

        return summaries;
    }

    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        StopAll();
    }

    private void OnProcessExit(object? sender, EventArgs e) => StopAll();

    private void StopAll()
    {
        lock (_gate)
        {
            StopAllLocked();
        }
    }

    private void StopAllLocked()
    {
        foreach (var (_, process, _) in _running)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }

                process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // Never started or already reaped.
            }

            process.Dispose();
        }

        _running.Clear();
    }

    /// <summary>What one node's audit log holds: its lines, the payouts and checkpoints it signed, the requests it refused.</summary>
    public sealed record AuditSummary(string Custodian, long Lines, int PayoutsSigned, int CheckpointsSigned, int SettlementsSigned, int Refused);

    /// <summary>A node's console output, kept for its listening line and, on failure, its last lines.</summary>
    private sealed class NodeOutput
    {
        private readonly Lock _gate = new();
        private readonly Queue<string> _tail = new();
        private bool _listening;

        public void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_gate)
            {
                _listening |= line.Contains("listening on", StringComparison.Ordinal);
                _tail.Enqueue(line);
                while (_tail.Count > 20)
                {
                    _tail.Dequeue();
                }
            }
        }

        public bool IsListening
        {
            get
            {
                lock (_gate)
                {
                    return _listening;
                }
            }
        }

        public string Tail()
        {
            lock (_gate)
            {
                return _tail.Count == 0 ? "(no output)" : string.Join(" | ", _tail);
            }
        }
    }
}
