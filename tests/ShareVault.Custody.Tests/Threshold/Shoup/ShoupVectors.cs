using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.TestSupport;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

/// <summary>Fixed safe primes from Vectors/shoup-safe-primes.json (public test values, never a real key).</summary>
internal sealed record ShoupVectors(int ModulusBits, BigInteger P, BigInteger Q)
{
    public static ShoupVectors For(int modulusBits)
    {
        var (p, q) = SafePrimeVectors.For(modulusBits);
        return new ShoupVectors(modulusBits, p, q);
    }
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
