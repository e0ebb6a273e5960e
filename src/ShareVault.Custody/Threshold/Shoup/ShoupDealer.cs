using System.Numerics;
using System.Security.Cryptography;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>
/// The dealer's secret output for one key: Shamir shares sᵢ = f(i) mod m of d over m = p′q′ with
/// f of degree t−1 (Shoup §2, "the dealer"). Lives only for the ceremony.
/// </summary>
internal sealed class ShoupDealing
{
    public required BigInteger Modulus { get; init; }

    public required BigInteger Exponent { get; init; }

    /// <summary>v: a random square mod N, the verification base (public).</summary>
    public required BigInteger VerificationBase { get; init; }

    /// <summary>sᵢ for i = 1…n (index i−1). Secret.</summary>
    public required BigInteger[] Shares { get; init; }

    /// <summary>vᵢ = v^sᵢ mod N (public): a custodian whose share no longer gives vᵢ holds a wrong share.</summary>
    public required BigInteger[] VerificationValues { get; init; }
}

internal static class ShoupDealer
{
    public static readonly BigInteger DefaultExponent = 65537;

    /// <summary>Deals a t-of-n key from safe primes p = 2p′+1, q = 2q′+1.</summary>
    public static ShoupDealing Deal(BigInteger p, BigInteger q, int threshold, int players, BigInteger exponent)
    {
        if (players < 1 || threshold < 1 || threshold > players)
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"Threshold must be between 1 and the number of custodians ({players})");
        }

        if (exponent <= players || !IsSmallPrime(exponent))
        {
            throw new ArgumentOutOfRangeException(nameof(exponent), "Shoup's scheme needs a prime public exponent larger than the number of custodians");
        }

        if (p == q)
        {
            throw new ArgumentException("p and q must differ");
        }

        var modulus = p * q;
        var m = ((p - 1) / 2) * ((q - 1) / 2);
        var d = IntegerMath.ModInverse(exponent, m);

        // f(X) = d + a₁X + … + a_{t−1}X^{t−1} over Z_m, aⱼ uniform in [0, m).
        var coefficients = new BigInteger[threshold];
        coefficients[0] = d;
        for (var j = 1; j < threshold; j++)
        {
            coefficients[j] = RandomBelow(m);
        }

        var shares = new BigInteger[players];
        for (var i = 1; i <= players; i++)
        {
            var value = BigInteger.Zero;
            for (var j = threshold - 1; j >= 0; j--)
            {
                value = ((value * i) + coefficients[j]) % m;
            }

            shares[i - 1] = value;
        }

        Array.Clear(coefficients);
        var r = RandomBelow(modulus - 2) + 2;
        var v = r * r % modulus;
        return new ShoupDealing
        {
            Modulus = modulus,
            Exponent = exponent,
            VerificationBase = v,
            Shares = shares,
            VerificationValues = [.. shares.Select(s => BigInteger.ModPow(v, s, modulus))],
        };
    }

    /// <summary>Uniform in [0, bound) by rejection sampling.</summary>
    public static BigInteger RandomBelow(BigInteger bound)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(bound, BigInteger.One);
        var bytes = new byte[(int)((bound.GetBitLength() + 7) / 8)];
        var excess = (bytes.Length * 8) - (int)bound.GetBitLength();
        try
        {
            while (true)
            {
                RandomNumberGenerator.Fill(bytes);
                bytes[0] &= (byte)(0xFF >> excess);
                var candidate = new BigInteger(bytes, isUnsigned: true, isBigEndian: true);
                if (candidate < bound)
                {
                    return candidate;
                }
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static bool IsSmallPrime(BigInteger e)
    {
        if (e < 2 || e.GetBitLength() > 32)
        {
            return false;
        }

        var value = (long)e;
        for (long f = 2; f * f <= value; f++)
        {
            if (value % f == 0)
            {
                return false;
            }
        }

        return true;
    }
}
