using System.Numerics;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>
/// The public arithmetic of Shoup's threshold RSA (Shoup, "Practical Threshold Signatures",
/// Eurocrypt 2000, §2). With z = x^(2Δ) and partials xᵢ = z^sᵢ, w = ∏ xᵢ^(2λᵢ) = x^(4Δ²d), so
/// y = w^a·x^b with a·4Δ² + b·e = 1 satisfies y^e = x (gcd(4Δ², e) = 1 because e is a prime > n).
/// </summary>
internal static class ShoupMath
{
    /// <summary>Δ = n!.</summary>
    public static BigInteger Delta(int players)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(players, 1);
        var delta = BigInteger.One;
        for (var i = 2; i <= players; i++)
        {
            delta *= i;
        }

        return delta;
    }

    /// <summary>
    /// λ⁽ˢ⁾₀,ᵢ = Δ·∏_{j∈S∖{i}} j/(j−i), an integer (Shoup §2: Δ clears every denominator).
    /// </summary>
    public static BigInteger Lagrange(BigInteger delta, IReadOnlyCollection<int> indices, int i)
    {
        var numerator = delta;
        var denominator = BigInteger.One;
        foreach (var j in indices)
        {
            if (j == i)
            {
                continue;
            }

            numerator *= j;
            denominator *= j - i;
        }

        var quotient = BigInteger.DivRem(numerator, denominator, out var remainder);
        if (!remainder.IsZero)
        {
            throw new ArithmeticException("Lagrange coefficient is not an integer; Δ does not cover this set of indices");
        }

        return quotient;
    }

    /// <summary>z = x^(2Δ) mod N: what every custodian raises to its share.</summary>
    public static BigInteger PartialBase(BigInteger x, BigInteger delta, BigInteger modulus) =>
        BigInteger.ModPow(x, 2 * delta, modulus);

    /// <summary>
    /// Combines partials {i → xᵢ} into y (Shoup §2, "share combining"). The caller verifies y^e = x;
    /// a wrong partial or too few partials give a y that does not. Negative exponents are gathered
    /// into one denominator so that only one modular inverse is computed.
    /// </summary>
    public static BigInteger Combine(BigInteger x, IReadOnlyDictionary<int, BigInteger> partials, BigInteger modulus, BigInteger exponent, BigInteger delta)
    {
        ArgumentNullException.ThrowIfNull(partials);

        // a·4Δ² + b·e = 1.
        var (g, a, b) = IntegerMath.ExtendedGcd(4 * delta * delta, exponent);
        if (!g.IsOne)
        {
            throw new ArgumentException("The public exponent must be coprime to 4Δ² (a prime larger than the number of custodians)", nameof(exponent));
        }

        // w = ∏ xᵢ^(2λᵢ) = wNum / wDen with every exponent made positive.
        var indices = partials.Keys.ToList();
        BigInteger wNum = BigInteger.One, wDen = BigInteger.One;
        foreach (var (i, xi) in partials)
        {
            var k = 2 * Lagrange(delta, indices, i);
            if (k.Sign >= 0)
            {
                wNum = wNum * BigInteger.ModPow(xi, k, modulus) % modulus;
            }
            else
            {
                wDen = wDen * BigInteger.ModPow(xi, -k, modulus) % modulus;
            }
        }

        // y = w^a·x^b = num / den.
        var (num, den) = a.Sign >= 0
            ? (BigInteger.ModPow(wNum, a, modulus), BigInteger.ModPow(wDen, a, modulus))
            : (BigInteger.ModPow(wDen, -a, modulus), BigInteger.ModPow(wNum, -a, modulus));
        if (b.Sign >= 0)
        {
            num = num * BigInteger.ModPow(x, b, modulus) % modulus;
        }
        else
        {
            den = den * BigInteger.ModPow(x, -b, modulus) % modulus;
        }

        return den.IsOne ? num : num * Inverse(den, modulus) % modulus;
    }

    /// <summary>v^k mod N for any integer k; a negative k inverts v first (v is a unit mod N).</summary>
    public static BigInteger PowSigned(BigInteger value, BigInteger k, BigInteger modulus) =>
        k.Sign >= 0
            ? BigInteger.ModPow(value, k, modulus)
            : BigInteger.ModPow(Inverse(value, modulus), -k, modulus);

    /// <summary>
    /// a⁻¹ mod m by the extended Euclidean algorithm tracking only the coefficient of a (half the
    /// work of a full Bézout pair; this inverse is the largest part of the coordinator's arithmetic).
    /// Throws <see cref="ArithmeticException"/> when gcd(a, m) ≠ 1.
    /// </summary>
    public static BigInteger Inverse(BigInteger a, BigInteger m)
    {
        BigInteger r0 = m, r1 = IntegerMath.Mod(a, m), t0 = BigInteger.Zero, t1 = BigInteger.One;
        while (!r1.IsZero)
        {
            var q = BigInteger.DivRem(r0, r1, out var r);
            (r0, r1) = (r1, r);
            (t0, t1) = (t1, t0 - (q * t1));
        }

        if (!r0.IsOne)
        {
            throw new ArithmeticException("Value has no inverse modulo m");
        }

        return t0.Sign < 0 ? t0 + m : t0;
    }
}
