using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.TestSupport;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

/// <summary>Fixed safe primes from Vectors/shoup-safe-primes.json (public test values, never a real key).</summary>
internal sealed record ShoupVectors(int ModulusBits, BigInteger P, BigInteger Q)
{
    private static readonly Lazy<IReadOnlyList<ShoupVectors>> All = new(() =>
    {
        var path = Path.Combine(RepoRoot.Path, "tests", "ShareVault.Custody.Tests", "Vectors", "shoup-safe-primes.json");
        var root = JsonNode.Parse(File.ReadAllText(path))!;
        return [.. root["sets"]!.AsArray().Select(s => new ShoupVectors(
            s!["modulusBits"]!.GetValue<int>(),
            BigInteger.Parse("0" + s["p"]!.GetValue<string>(), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
            BigInteger.Parse("0" + s["q"]!.GetValue<string>(), NumberStyles.HexNumber, CultureInfo.InvariantCulture)))];
    });

    public static ShoupVectors For(int modulusBits) => All.Value.Single(v => v.ModulusBits == modulusBits);
}

/// <summary>Hands the ceremony fixed safe primes and counts how often it asked.</summary>
internal sealed class FixedSafePrimes : ISafePrimeSource
{
    public int Calls { get; private set; }

    public (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        Calls++;
        var v = ShoupVectors.For(modulusBits);
        return (v.P, v.Q);
    }
}
