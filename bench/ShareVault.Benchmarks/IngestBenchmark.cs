using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Evidence;
using ShareVault.Service;
using ShareVault.Storage;

namespace ShareVault.Benchmarks;

/// <summary>
/// Evidence records per second verified (COSE_Sign1 ES256 under each device's enrolled key), stored
/// durably (SQLite WAL, synchronous=FULL, one transaction per batch), evaluated and receipted by one
/// ingest instance, with a fleet of simulated devices; next to the bare ECDSA P-256 verify rate
/// measured in the same run on the same cores.
/// </summary>
internal sealed class IngestBenchmark : IBenchmark
{
    public string Name => "ingest";

    public string Description => "evidence records/s verified + durably stored, vs bare ECDSA P-256 verify [devices] [records-per-device]";

    public async Task RunAsync(string[] args)
    {
        var devices = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 200;
        var perDevice = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 150;
        var folder = Path.Combine(Path.GetTempPath(), "sv-ingest-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            Console.WriteLine($"fleet: {devices} devices x {perDevice} records = {devices * perDevice} records, {Environment.ProcessorCount} cores");
            var fleet = Enumerable.Range(0, devices).Select(i => (Id: $"bench-{i:D4}", Key: ECDsa.Create(ECCurve.NamedCurves.nistP256))).ToList();
            var start = DateTimeOffset.UtcNow.AddHours(-2);
            var messages = new List<IncomingEvidence>(devices * perDevice);
            var signing = Stopwatch.StartNew();
            var perFleet = new List<IncomingEvidence>[devices];
            Parallel.For(0, devices, d =>
            {
                var (id, key) = fleet[d];
                var previous = Array.Empty<byte>();
                perFleet[d] = new List<IncomingEvidence>(perDevice);
                for (var s = 0; s < perDevice; s++)
                {
                    var t = start.AddSeconds(s * 30);
                    var cose = EvidenceSigner.Sign(new EvidenceRecord(id, s, t, previous,
                    [
                        new Reading("temperature", "Cel", 20 + (s % 5), t), new Reading("humidity", "%RH", 45, t), new Reading("water_leak", null, 0, t),
                    ]), key);
                    previous = EvidenceRecord.Hash(cose);
                    perFleet[d].Add(new IncomingEvidence(EvidenceTopics.Evidence(id), cose, id));
                }
            });

            // Interleave devices as a broker would.
            for (var s = 0; s < perDevice; s++)
            {
                for (var d = 0; d < devices; d++)
                {
                    messages.Add(perFleet[d][s]);
                }
            }

            Console.WriteLine($"signed the fleet's records in {signing.Elapsed.TotalSeconds:F1} s");

            // Bare ECDSA P-256 verification of the same kind of signature, single core and all cores.
            using var bareKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var hash = SHA256.HashData("x"u8);
            var signature = bareKey.SignHash(hash);
            var single = Stats.Rate(TimeSpan.FromSeconds(2), () => bareKey.VerifyHash(hash, signature));
            var parallel = ParallelRate(TimeSpan.FromSeconds(2), hash, signature, bareKey.ExportSubjectPublicKeyInfo());
            Console.WriteLine($"bare ECDSA P-256 verify: {single:F0}/s on one core, {parallel:F0}/s on {Environment.ProcessorCount} cores");

            using var db = new ClaimsDatabase(Path.Combine(folder, "claims.db"));
            using var engine = new ClaimsEngine(db, new NoSigner(), TimeProvider.System);
            await engine.CreatePoolAsync("bench", "bench", "EUR", "none", 1000, default);
            await engine.AddMemberAsync("bench", "m", "m", default);
            await engine.IssuePolicyAsync("bench", "m", "p", "water_leak == 1 for 10m", 100, 0, null, default);
            foreach (var (id, key) in fleet)
            {
                await engine.EnrollDeviceAsync("bench", "m", id, key.ExportSubjectPublicKeyInfo(), default);
            }

            var receipts = 0L;
            var done = new TaskCompletionSource();
            await using var ingest = new EvidenceIngest(engine, (_, _, _) =>
            {
                if (Interlocked.Increment(ref receipts) == messages.Count)
                {
                    done.TrySetResult();
                }

                return Task.CompletedTask;
            }, TimeProvider.System, new IngestOptions { RatePerSecond = 1e9, Burst = 1e9 });
            ingest.Start();
            var clock = Stopwatch.StartNew();
            foreach (var message in messages)
            {
                await ingest.SubmitAsync(message, default);
            }

            await done.Task.WaitAsync(TimeSpan.FromMinutes(10));
            var elapsed = clock.Elapsed;
            var stored = engine.EvidenceCount();
            var rate = messages.Count / elapsed.TotalSeconds;
            Console.WriteLine($"ingest: {messages.Count} records in {elapsed.TotalSeconds:F2} s = {rate:F0} records/s verified + stored (synchronous=FULL) + receipted");
            Console.WriteLine($"stored {stored} of {messages.Count} (loss: {messages.Count - stored}); stored receipts {Interlocked.Read(ref ingest.Metrics.StoredCount)}; rejections {ingest.Metrics.Rejections.Values.Sum()}");
            Console.WriteLine($"ingest / bare parallel verify = {rate / parallel:P0}");
            foreach (var (_, key) in fleet)
            {
                key.Dispose();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static double ParallelRate(TimeSpan duration, byte[] hash, byte[] signature, byte[] spki)
    {
        var counts = new long[Environment.ProcessorCount];
        var clock = Stopwatch.StartNew();
        Parallel.For(0, counts.Length, i =>
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(spki, out _);
            while (clock.Elapsed < duration)
            {
                key.VerifyHash(hash, signature);
                counts[i]++;
            }
        });
        return counts.Sum() / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The benchmark measures ingest only; no payout is signed.</summary>
    private sealed class NoSigner : IPoolSigner
    {
        public bool Exists(string keyName) => true;

        public JsonObject Jwks(string keyName) => new() { ["keys"] = new JsonArray() };

        public Task<(string Jws, string Kid)> SignAsync(string keyName, byte[] payload, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("The ingest benchmark signs nothing");
    }
}
