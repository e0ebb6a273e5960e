using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>Shoup threshold RSA: partials/s through the store, 2-of-3 latency, ceremony time.</summary>
internal sealed class ShoupBenchmark : IBenchmark
{
    private static readonly string[] SigningTokens = ["custody-a", "custody-b", "custody-c"];
    private static readonly string[] CeremonyTokens = ["spare-1", "spare-2", "spare-3"];

    public string Name => "shoup";

    public string Description => "Shoup RSA: partials/s (2048/3072), 2-of-3 latency, ceremony time [--runs N] [--vectors FILE]";

    public async Task RunAsync(string[] args)
    {
        var vectors = Option(args, "--vectors");
        if (vectors is not null)
        {
            WriteVectors(vectors);
            return;
        }

        var runs = int.Parse(Option(args, "--runs") ?? "3", CultureInfo.InvariantCulture);
        var seconds = double.Parse(Option(args, "--seconds") ?? "3", CultureInfo.InvariantCulture);
        var dataDir = Path.Combine(Path.GetTempPath(), $"shoup-bench-{Guid.NewGuid():N}"[..24]);
        using var stores = new ShareStoreRegistry(dataDir);
        var catalog = new KeyCatalog(dataDir);
        Console.WriteLine($"shoup benchmark on SoftHSM ({SoftHsm.ModulePath}), {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        try
        {
            foreach (var bits in new[] { 2048, 3072 })
            {
                await MeasureSigningAsync(stores, catalog, bits, seconds);
            }

            MeasureCeremony(stores, catalog, runs);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task MeasureSigningAsync(ShareStoreRegistry stores, KeyCatalog catalog, int bits, double seconds)
    {
        var name = $"bench-{Guid.NewGuid():N}"[..14];
        var uris = SigningTokens.Select(t => SoftHsm.Shared.Uri(t, name)).ToList();
        var key = new ShoupCeremony(stores.Get, catalog, TimeProvider.System, new VectorPrimes()).Create(name, 2, bits, uris);
        try
        {
            var shoup = ShoupKey.From(key);
            var custodian = key.Custodians[0];
            var store = (IShoupShareStore)stores.Get(new CustodianAddress(custodian.Name, custodian.Uri, custodian.ObjectLabel, custodian.Kind));
            var z = BigEndian.ToBytes(ShoupMath.PartialBase(ShoupDealer.RandomBelow(shoup.Modulus), shoup.Delta, shoup.Modulus), shoup.PublicKey.ByteLength);
            for (var i = 0; i < 20; i++)
            {
                store.ShoupPartial(custodian.ObjectLabel, z);
            }

            var rate = Stats.Rate(TimeSpan.FromSeconds(seconds), () => store.ShoupPartial(custodian.ObjectLabel, z));
            var partial = await Stats.LatenciesAsync(200, () =>
            {
                store.ShoupPartial(custodian.ObjectLabel, z);
                return Task.CompletedTask;
            });
            var signer = new ThresholdSigner(stores, TimeSpan.FromSeconds(30));
            var message = Encoding.UTF8.GetBytes("benchmark payout");
            for (var i = 0; i < 10; i++)
            {
                await signer.SignRawAsync(key, message, null, CancellationToken.None);
            }

            var signing = await Stats.LatenciesAsync(200, () => signer.SignRawAsync(key, message, null, CancellationToken.None));
            // The coordinator's own arithmetic: z, combination in the exponent, y^e check.
            var x = ShoupDealer.RandomBelow(shoup.Modulus);
            var zx = ShoupMath.PartialBase(x, shoup.Delta, shoup.Modulus);
            var partials = key.Custodians.Take(2).ToDictionary(c => c, c => BigEndian.ToInteger(
                ((IShoupShareStore)stores.Get(new CustodianAddress(c.Name, c.Uri, c.ObjectLabel, c.Kind))).ShoupPartial(c.ObjectLabel, BigEndian.ToBytes(zx, shoup.PublicKey.ByteLength))));
            var combine = await Stats.LatenciesAsync(200, () =>
            {
                ShoupMath.PartialBase(x, shoup.Delta, shoup.Modulus);
                _ = ShoupSigner.TryCombine(shoup, x, partials) ?? throw new InvalidOperationException("combination did not verify");
                return Task.CompletedTask;
            });
            Console.WriteLine($"RSA-{bits}: coordinator arithmetic (z, combine, verify) median {Stats.Median(combine):0.00} ms");
            var onePartial = Stats.Median(partial);
            Console.WriteLine($"RSA-{bits}: {rate:0} partials/s on one thread (one core); one partial median {onePartial:0.00} ms");
            Console.WriteLine($"RSA-{bits}: 2-of-3 signature median {Stats.Median(signing):0.00} ms, p95 {Stats.Percentile(signing, 95):0.00} ms " +
                $"= {Stats.Median(signing) / onePartial:0.00}x one partial (aim <= 1.5x)");
        }
        finally
        {
            foreach (var c in key.Custodians)
            {
                stores.Get(new CustodianAddress(c.Name, c.Uri, c.ObjectLabel, c.Kind)).DeleteKey(c.ObjectLabel);
            }
        }
    }

    private static void MeasureCeremony(ShareStoreRegistry stores, KeyCatalog catalog, int runs)
    {
        var times = new List<double>();
        for (var run = 0; run < runs; run++)
        {
            var name = $"bench-{Guid.NewGuid():N}"[..14];
            var uris = CeremonyTokens.Select(t => SoftHsm.Shared.Uri(t, name)).ToList();
            var clock = Stopwatch.StartNew();
            var key = new ShoupCeremony(stores, catalog, TimeProvider.System).Create(name, 2, 2048, uris);
            times.Add(clock.Elapsed.TotalSeconds);
            Console.WriteLine($"ceremony run {run + 1}: {clock.Elapsed.TotalSeconds:0.0} s (2-of-3, RSA-2048, real safe primes, probe + wrapped import)");
            foreach (var c in key.Custodians)
            {
                stores.Get(new CustodianAddress(c.Name, c.Uri, c.ObjectLabel, c.Kind)).DeleteKey(c.ObjectLabel);
            }
        }

        if (times.Count > 0)
        {
            Console.WriteLine($"ceremony RSA-2048 2-of-3: median {Stats.Median(times):0.0} s over {times.Count} run(s), max {times.Max():0.0} s (aim < 30 s)");
        }
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    /// <summary>The fixed test primes (<see cref="SafePrimeVectors"/>), so the signing numbers do not wait for safe primes.</summary>
    private sealed class VectorPrimes : ISafePrimeSource
    {
        public (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken) =>
            SafePrimeVectors.For(modulusBits);
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    /// <summary>Generates the fixed safe primes the tests use (run once; the file is committed).</summary>
    private static void WriteVectors(string path)
    {
        var progress = new Progress<string>(Console.Error.WriteLine);
        var sets = new JsonArray();
        foreach (var bits in new[] { 2048, 3072 })
        {
            var clock = Stopwatch.StartNew();
            var (p, q) = new SafePrimeGenerator().Generate(bits, progress, CancellationToken.None);
            Console.Error.WriteLine($"{bits}: {clock.Elapsed.TotalSeconds:0.0} s");
            sets.Add(new JsonObject
            {
                ["modulusBits"] = bits,
                ["p"] = p.ToString("x", CultureInfo.InvariantCulture),
                ["q"] = q.ToString("x", CultureInfo.InvariantCulture),
            });
        }

        var root = new JsonObject
        {
            ["description"] = "Fixed safe primes p = 2p'+1, q = 2q'+1 (top two bits set) for Shoup threshold-RSA tests ONLY. Public test vectors: never use for a real key. Generated with SafePrimeGenerator (bench: shoup --vectors).",
            ["sets"] = sets,
        };
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}
