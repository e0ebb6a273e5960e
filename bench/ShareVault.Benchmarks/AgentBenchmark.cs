using System.Diagnostics;
using System.Security.Cryptography;
using DeviceAgent;
using DeviceAgent.Keys;
using DeviceAgent.Sensors;
using DeviceAgent.Storage;
using ShareVault.Evidence;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Device agent throughput: records per second signed and enqueued (durable outbox with group
/// commit, sequence state written once per group) with a software key and with a PKCS#11 (SoftHSM)
/// key, one record at a time (each waits for its own fsync) and pipelined (up to 64 records in
/// flight, so records made while a commit is in flight share the next fsync); signing alone, bare
/// ECDSA verification (the yardstick for ratios) and raw outbox writes. Each row is the median of
/// <c>--rounds N</c> (default 3) rounds of <c>--seconds S</c> (default 2).
/// </summary>
internal sealed class AgentBenchmark : IBenchmark
{
    private const int InFlight = 64;

    public string Name => "agent";

    public string Description => "evidence records/s signed+enqueued (software vs PKCS#11 key, one at a time vs group commit), outbox throughput";

    public async Task RunAsync(string[] args)
    {
        var seconds = Option(args, "--seconds", 2);
        var rounds = (int)Option(args, "--rounds", 3);
        var duration = TimeSpan.FromSeconds(seconds);
        var root = Path.Combine(Path.GetTempPath(), "agent-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            Console.WriteLine($"agent benchmark: median of {rounds} rounds of {seconds:F0} s per row, {Environment.ProcessorCount} cores, data under {root}");
            using var software = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var hsm = DeviceKey.Create(SoftHsm.Shared.Uri("device-hsm", $"bench-{Guid.NewGuid():N}"[..14]), allowSoftwareKey: false);

            var record = SampleRecord();
            var verify = Median(rounds, () => Stats.Rate(duration, VerifyOnce(software, record)));
            Row("verify (bare ECDSA P-256, one core)", verify, "records/s", verify);
            Row("sign only, software key", Median(rounds, () => Stats.Rate(duration, () => EvidenceSigner.Sign(record, software))), "records/s", verify);
            Row("sign only, PKCS#11 (SoftHSM)", Median(rounds, () => Stats.Rate(duration, () => EvidenceSigner.Sign(record, hsm.Signer))), "records/s", verify);

            var round = 0;
            foreach (var (label, key) in new[] { ("software key", software), ("PKCS#11 (SoftHSM)", hsm.Signer) })
            {
                Row($"sign+enqueue one at a time, {label}", Median(rounds, () => Pipeline(Path.Combine(root, $"one-{round++}"), key, duration, 1).Rate), "records/s", verify);
                var runs = new List<(double Rate, double FsyncsPerRecord)>();
                for (var i = 0; i < rounds; i++)
                {
                    runs.Add(Pipeline(Path.Combine(root, $"group-{round++}"), key, duration, InFlight));
                }

                Row($"sign+enqueue group commit, {label}", Stats.Median([.. runs.Select(r => r.Rate)]), "records/s", verify);
                Row("  segment fsyncs per record", Stats.Median([.. runs.Select(r => r.FsyncsPerRecord)]), "", null, "F3");
            }

            var cose = EvidenceSigner.Sign(record, software);
            Row($"outbox add one at a time ({cose.Length} B)", Median(rounds, () => RawOutbox(Path.Combine(root, $"raw-{round++}"), cose, duration, 1)), "records/s", null);
            Row($"outbox add, {InFlight} in flight", Median(rounds, () => RawOutbox(Path.Combine(root, $"raw-{round++}"), cose, duration, InFlight)), "records/s", null);

            using var outbox = Outbox.Open(Path.Combine(root, "release"), new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
            await Task.WhenAll(Enumerable.Range(1, 20_000).Select(i => outbox.AddAsync(i, cose)));
            var entries = outbox.Snapshot();
            var start = Stopwatch.GetTimestamp();
            foreach (var entry in entries)
            {
                outbox.Release(entry.Hash);
            }

            Row("outbox release", entries.Count / Stopwatch.GetElapsedTime(start).TotalSeconds, "records/s", null);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Records/s signed alone with <paramref name="key"/> for about <paramref name="duration"/> (one round of the <c>evidence</c> benchmark).</summary>
    internal static double SignRate(ECDsa key, TimeSpan duration)
    {
        var record = SampleRecord();
        return Stats.Rate(duration, () => EvidenceSigner.Sign(record, key));
    }

    /// <summary>Records/s signed and acknowledged durable through the real pipeline with group commit (a fresh outbox under <paramref name="dataDir"/>).</summary>
    internal static (double Rate, double FsyncsPerRecord) GroupCommitRate(string dataDir, ECDsa key, TimeSpan duration) => Pipeline(dataDir, key, duration, InFlight);

    private static double Option(string[] args, string name, double fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? double.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    private static double Median(int rounds, Func<double> measure) => Stats.Median([.. Enumerable.Range(0, rounds).Select(_ => measure())]);

    private static Action VerifyOnce(ECDsa key, EvidenceRecord record)
    {
        var cose = EvidenceSigner.Sign(record, key);
        return () =>
        {
            if (!EvidenceVerifier.Verify(cose, _ => key).IsValid)
            {
                throw new InvalidOperationException("benchmark record failed to verify");
            }
        };
    }

    /// <summary>Records/s acknowledged durable by the real pipeline with up to <paramref name="inFlight"/> records waiting for their commit.</summary>
    private static (double Rate, double FsyncsPerRecord) Pipeline(string dataDir, ECDsa key, TimeSpan duration, int inFlight)
    {
        using var outbox = Outbox.Open(Path.Combine(dataDir, "outbox"), new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
        using var pipeline = new AgentPipeline("bench-device", [new Kit()], key, SequenceState.Open(dataDir, outbox), outbox, TimeProvider.System);
        var rate = Windowed(duration, inFlight, () => pipeline.CaptureAsync());
        return (rate, outbox.GroupCommits / (double)outbox.Count);
    }

    private static double RawOutbox(string directory, byte[] cose, TimeSpan duration, int inFlight)
    {
        using var outbox = Outbox.Open(directory, new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
        long seq = 0;
        return Windowed(duration, inFlight, () => outbox.AddAsync(++seq, cose));
    }

    /// <summary>Completions per second, keeping up to <paramref name="inFlight"/> operations outstanding.</summary>
    private static double Windowed(TimeSpan duration, int inFlight, Func<Task> start)
    {
        var window = new Queue<Task>();
        var done = 0;
        var began = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(began) < duration)
        {
            window.Enqueue(start());
            while (window.Count >= inFlight || (window.Count > 0 && window.Peek().IsCompleted))
            {
                window.Dequeue().GetAwaiter().GetResult();
                done++;
            }
        }

        while (window.Count > 0)
        {
            window.Dequeue().GetAwaiter().GetResult();
            done++;
        }

        return done / Stopwatch.GetElapsedTime(began).TotalSeconds;
    }

    private static void Row(string what, double value, string unit, double? verify, string format = "F0") =>
        Console.WriteLine($"  {what,-48} {value.ToString(format, System.Globalization.CultureInfo.InvariantCulture),12} {unit,-10}{(verify is { } v ? $" {value / v,6:P0} of verify" : string.Empty)}");

    private static EvidenceRecord SampleRecord()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000);
        return new EvidenceRecord("bench-device", 1, now, new byte[32], Kit.ReadingsAt(now));
    }

    /// <summary>A BME280-sized sample without a bus: the benchmark measures signing and storage, not drivers.</summary>
    private sealed class Kit : ISensor
    {
        public string Id => "kit";

        public static IReadOnlyList<Reading> ReadingsAt(DateTimeOffset now) =>
        [
            new Reading("temperature", "Cel", 21.37, now),
            new Reading("humidity", "%RH", 48.2, now),
            new Reading("pressure", "Pa", 100_914.5, now),
            new Reading("water_leak", null, 0, now),
        ];

        public SensorSample Read(DateTimeOffset now) => new(Id, ReadingsAt(now));

        public void Dispose()
        {
        }
    }
}
