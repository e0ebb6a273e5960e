using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Threshold.Shoup;

namespace ShareVault.Benchmarks;

/// <summary>Shoup threshold RSA: partials/s through the store, 2-of-3 latency, ceremony time.</summary>
internal sealed class ShoupBenchmark : IBenchmark
{
    public string Name => "shoup";

    public string Description => "Shoup RSA: partials/s (2048/3072), 2-of-3 latency, ceremony time [--runs N] [--vectors FILE]";

    public Task RunAsync(string[] args)
    {
        var vectors = Option(args, "--vectors");
        if (vectors is not null)
        {
            WriteVectors(vectors);
            return Task.CompletedTask;
        }

        return Task.CompletedTask;
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
