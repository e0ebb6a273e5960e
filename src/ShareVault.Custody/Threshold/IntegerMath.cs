using System.Numerics;

namespace ShareVault.Custody.Threshold;

/// <summary>Number theory the threshold schemes need beyond <see cref="BigInteger.ModPow"/>.</summary>
internal static class IntegerMath
{
    /// <summary>a^-1 mod m; throws when gcd(a, m) ≠ 1.</summary>
    public static BigInteger ModInverse(BigInteger a, BigInteger m)
    {
        var (g, x, _) = ExtendedGcd(Mod(a, m), m);
        if (!g.IsOne)
        {
            throw new ArithmeticException("Value has no inverse modulo m");
        }

        return Mod(x, m);
    }

    /// <summary>(g, x, y) with a·x + b·y = g = gcd(a, b).</summary>
    public static (BigInteger G, BigInteger X, BigInteger Y) ExtendedGcd(BigInteger a, BigInteger b)
    {
        BigInteger x0 = BigInteger.One, x1 = BigInteger.Zero, y0 = BigInteger.Zero, y1 = BigInteger.One;
        while (!b.IsZero)
        {
            var q = BigInteger.DivRem(a, b, out var r);
            (a, b) = (b, r);
            (x0, x1) = (x1, x0 - (q * x1));
            (y0, y1) = (y1, y0 - (q * y1));
        }

        return (a, x0, y0);
    }

    /// <summary>The non-negative residue of a mod m.</summary>
    public static BigInteger Mod(BigInteger a, BigInteger m)
    {
        var r = BigInteger.Remainder(a, m);
        return r.Sign < 0 ? r + m : r;
    }

    /// <summary>
    /// Chinese remainder theorem for pairwise coprime moduli: the unique s mod ∏ nᵢ with s ≡ rᵢ (mod nᵢ).
    /// </summary>
    public static BigInteger Crt(IReadOnlyList<BigInteger> residues, IReadOnlyList<BigInteger> moduli)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(residues.Count, moduli.Count);
        var product = moduli.Aggregate(BigInteger.One, (acc, n) => acc * n);
        var sum = BigInteger.Zero;
        for (var i = 0; i < moduli.Count; i++)
        {
            var others = product / moduli[i];
            sum += residues[i] * others * ModInverse(others, moduli[i]);
        }

        return Mod(sum, product);
    }
}
