using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;

namespace ShareVault.TestSupport;

/// <summary>
/// The fixed safe primes of tests/ShareVault.Custody.Tests/Vectors/shoup-safe-primes.json (public test
/// values, never a real key), so Shoup ceremonies in tests and benchmarks do not wait seconds for safe primes.
/// </summary>
public static class SafePrimeVectors
{
    private static readonly Lazy<IReadOnlyDictionary<int, (BigInteger P, BigInteger Q)>> All = new(() =>
    {
        var path = Path.Combine(RepoRoot.Path, "tests", "ShareVault.Custody.Tests", "Vectors", "shoup-safe-primes.json");
        return JsonNode.Parse(File.ReadAllText(path))!["sets"]!.AsArray().ToDictionary(
            s => s!["modulusBits"]!.GetValue<int>(),
            s => (Hex(s!["p"]!), Hex(s!["q"]!)));
    });

    /// <summary>The primes p, q of the set for <paramref name="modulusBits"/>; throws when the file has none.</summary>
    public static (BigInteger P, BigInteger Q) For(int modulusBits) =>
        All.Value.TryGetValue(modulusBits, out var set) ? set : throw new ArgumentOutOfRangeException(nameof(modulusBits), modulusBits, "no safe-prime test vector of that size");

    private static BigInteger Hex(JsonNode node) => BigInteger.Parse("0" + node.GetValue<string>(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
