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
/// Device agent throughput: records per second signed and enqueued (durable outbox, fsync'd
/// sequence state) with a software key and with a PKCS#11 (SoftHSM) key, signing alone, and raw
/// outbox writes to disk. Options: <c>--seconds N</c> per measurement (default 3).
/// </summary>
internal sealed class AgentBenchmark : IBenchmark
{
    public string Name => "agent";

    public string Description => "evidence records/s signed+enqueued (software vs PKCS#11 key), outbox throughput";

    public Task RunAsync(string[] args)
    {
        var seconds = args.Length >= 2 && args[0] == "--seconds" ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
        var duration = TimeSpan.FromSeconds(seconds);
        var root = Path.Combine(Path.GetTempPath(), "agent-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            Console.WriteLine($"agent benchmark, {seconds:F0} s per row, data under {root}");
            using var software = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var hsm = DeviceKey.Create(SoftHsm.Shared.Uri("device-hsm", $"bench-{Guid.NewGuid():N}"[..14]), allowSoftwareKey: false);

            var record = SampleRecord();
            Row("sign only, software key", Stats.Rate(duration, () => EvidenceSigner.Sign(record, software)), "records/s");
            Row("sign only, PKCS#11 (SoftHSM)", Stats.Rate(duration, () => EvidenceSigner.Sign(record, hsm.Signer)), "records/s");
            Row("verify, software key", Stats.Rate(duration, VerifyOnce(software, record)), "records/s");

            Row("sign+enqueue, software key", Pipeline(Path.Combine(root, "sw"), software, duration), "records/s");
            Row("sign+enqueue, PKCS#11 (SoftHSM)", Pipeline(Path.Combine(root, "hsm"), hsm.Signer, duration), "records/s");

            using var outbox = Outbox.Open(Path.Combine(root, "raw"), new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
            var cose = EvidenceSigner.Sign(record, software);
            long seq = 0;
            var rate = Stats.Rate(duration, () => outbox.Add(++seq, cose));
            Row($"outbox add ({cose.Length} B records, fsync)", rate, "records/s");
            Row("outbox add throughput", rate * cose.Length / 1024, "KiB/s");
            var entries = outbox.Snapshot();
            var start = Stopwatch.GetTimestamp();
            foreach (var entry in entries)
            {
                outbox.Release(entry.Hash);
            }

            Row("outbox release", entries.Count / Stopwatch.GetElapsedTime(start).TotalSeconds, "records/s");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }

        return Task.CompletedTask;
    }

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

    private static double Pipeline(string dataDir, ECDsa key, TimeSpan duration)
    {
        using var outbox = Outbox.Open(Path.Combine(dataDir, "outbox"), new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
        using var pipeline = new AgentPipeline("bench-device", [new Kit()], key, SequenceState.Open(dataDir, outbox), outbox, TimeProvider.System);
        return Stats.Rate(duration, () => pipeline.CaptureNow());
    }

    private static void Row(string what, double value, string unit) => Console.WriteLine($"  {what,-42} {value,12:F0} {unit}");

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
