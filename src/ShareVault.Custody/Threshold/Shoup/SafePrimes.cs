using System.Diagnostics;
using Org.BouncyCastle.Security;
using BcInteger = Org.BouncyCastle.Math.BigInteger;
using BigInteger = System.Numerics.BigInteger;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>Where a Shoup dealer gets its two safe primes p = 2p′+1, q = 2q′+1.</summary>
public interface ISafePrimeSource
{
    /// <summary>Two distinct safe primes of <paramref name="modulusBits"/>/2 bits each whose product has exactly <paramref name="modulusBits"/> bits.</summary>
    (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken);
}

/// <summary>
/// Safe-prime search with BouncyCastle integers: a random q′ with its two top bits set and
/// q′ ≡ 5 (mod 6), sieved so that neither q′ nor 2q′+1 has a prime factor below 2^14, then a
/// base-2 Fermat test on both and Miller–Rabin (BouncyCastle, certainty 2^-100) on the survivors.
/// Setting the top two bits makes pq exactly the requested size (Shoup §2 needs |p| = |q|).
/// </summary>
internal sealed class SafePrimeGenerator : ISafePrimeSource
{
    private const int Certainty = 100;
    private const int Window = 8192;
    private static readonly int[] SmallPrimes = SieveSmallPrimes(1 << 14);
    private static readonly int[] SixInverses = [.. SmallPrimes.Select(r => ModInverse(6 % r, r))];
    private static readonly BcInteger Two = BcInteger.Two;
    private static readonly BcInteger Six = BcInteger.ValueOf(6);

    public (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        if (modulusBits is < 512 or > 8192 || modulusBits % 2 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(modulusBits), modulusBits, "Modulus size must be an even number of bits from 512 to 8192");
        }

        // The two searches are independent: run them side by side.
        var first = Task.Run(() => Search(modulusBits / 2, "p", progress, cancellationToken), cancellationToken);
        var q = Search(modulusBits / 2, "q", progress, cancellationToken);
        var p = first.GetAwaiter().GetResult();
        if (p == q)
        {
            // Probability about 2^-500; keep the guarantee anyway.
            return Generate(modulusBits, progress, cancellationToken);
        }

        return (p, q);
    }

    /// <summary>One safe prime of exactly <paramref name="bits"/> bits with its two top bits set.</summary>
    public static BigInteger Search(int bits, string name, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        long tested = 0;
        var random = new SecureRandom();
        var marks = new bool[Window];
        while (true)
        {
            // q′ has bits−1 bits with its top two bits set; q′ ≡ 5 (mod 6) so q′ is odd and 2q′+1 ≢ 0 (mod 3).
            var start = new BcInteger(bits - 1, random).SetBit(bits - 2).SetBit(bits - 3);
            start = start.Subtract(start.Mod(Six)).Add(BcInteger.ValueOf(5));
            Array.Clear(marks);
            for (var i = 0; i < SmallPrimes.Length; i++)
            {
                var r = SmallPrimes[i];
                var residue = start.Mod(BcInteger.ValueOf(r)).IntValue;
                var inverse = SixInverses[i];
                // q′ + 6k ≡ 0 and q′ + 6k ≡ (r−1)/2 (i.e. 2q′+1 ≡ 0) are the bad k (mod r).
                foreach (var target in new[] { 0, (r - 1) / 2 })
                {
                    var k = (int)((long)(target - residue + r) % r * inverse % r);
                    for (; k < Window; k += r)
                    {
                        marks[k] = true;
                    }
                }
            }

            for (var k = 0; k < Window; k++)
            {
                if (marks[k])
                {
                    continue;
                }

                cancellationToken.ThrowIfCancellationRequested();
                tested++;
                var qPrime = start.Add(BcInteger.ValueOf(6L * k));
                var p = qPrime.ShiftLeft(1).Add(BcInteger.One);
                if (clock.Elapsed - lastReport >= TimeSpan.FromSeconds(3))
                {
                    lastReport = clock.Elapsed;
                    progress?.Report($"safe prime {name}: {tested} candidates tested, {clock.Elapsed.TotalSeconds:0} s");
                }

                // Fermat base 2 first: one modular exponentiation rejects almost every composite.
                if (!Two.ModPow(p.Subtract(BcInteger.One), p).Equals(BcInteger.One)
                    || !Two.ModPow(qPrime.Subtract(BcInteger.One), qPrime).Equals(BcInteger.One)
                    || !qPrime.IsProbablePrime(Certainty) || !p.IsProbablePrime(Certainty))
                {
                    continue;
                }

                progress?.Report($"safe prime {name}: found after {tested} candidates, {clock.Elapsed.TotalSeconds:0.0} s");
                var bytes = p.ToByteArrayUnsigned();
                try
                {
                    return new BigInteger(bytes, isUnsigned: true, isBigEndian: true);
                }
                finally
                {
                    System.Security.Cryptography.CryptographicOperations.ZeroMemory(bytes);
                }
            }
        }
    }

    private static int ModInverse(int a, int m)
    {
        for (var x = 1; x < m; x++)
        {
            if (a * x % m == 1)
            {
                return x;
            }
        }

        throw new ArithmeticException("no inverse");
    }

    private static int[] SieveSmallPrimes(int limit)
    {
        var composite = new bool[limit];
        var primes = new List<int>();
        for (var i = 2; i < limit; i++)
        {
            if (composite[i])
            {
                continue;
            }

            if (i > 3)
            {
                primes.Add(i);
            }

            for (var j = i * i; j < limit; j += i)
            {
                composite[j] = true;
            }
        }

        return [.. primes];
    }
}
