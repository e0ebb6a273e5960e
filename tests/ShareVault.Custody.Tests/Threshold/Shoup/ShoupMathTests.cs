using System.Numerics;
using Org.BouncyCastle.Asn1;
using Org.BouncyCastle.Asn1.Pkcs;
using Org.BouncyCastle.Crypto.Engines;
using Org.BouncyCastle.Crypto.Parameters;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.Shoup;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

public sealed class ShoupMathTests
{
    [Fact]
    public void Software_partials_of_every_subset_combine_into_a_valid_signature_and_smaller_sets_do_not()
    {
        var v = ShoupVectors.For(2048);
        var dealing = ShoupDealer.Deal(v.P, v.Q, 3, 5, ShoupDealer.DefaultExponent);
        var delta = ShoupMath.Delta(5);
        var x = ShoupDealer.RandomBelow(dealing.Modulus);
        var z = ShoupMath.PartialBase(x, delta, dealing.Modulus);
        var partials = dealing.Shares.Select(s => BigInteger.ModPow(z, s, dealing.Modulus)).ToArray();
        for (var a = 1; a <= 5; a++)
        {
            for (var b = a + 1; b <= 5; b++)
            {
                Assert.NotEqual(x, BigInteger.ModPow(Combine(x, dealing, delta, partials, a, b), 65537, dealing.Modulus));
                for (var c = b + 1; c <= 5; c++)
                {
                    Assert.Equal(x, BigInteger.ModPow(Combine(x, dealing, delta, partials, a, b, c), 65537, dealing.Modulus));
                }
            }
        }

        // Verification values: vᵢ = v^sᵢ, and v is a square (a residue with Jacobi symbol 1 at least).
        Assert.Equal(BigInteger.ModPow(dealing.VerificationBase, dealing.Shares[2], dealing.Modulus), dealing.VerificationValues[2]);
    }

    [Fact]
    public void Lagrange_coefficients_are_integers_and_interpolate_at_zero()
    {
        var delta = ShoupMath.Delta(5);
        Assert.Equal(120, delta);
        int[] set = [2, 4, 5];
        // f(X) = 7 + 3X + 2X²: Σ λᵢ f(i) = Δ f(0).
        var sum = set.Aggregate(BigInteger.Zero, (acc, i) => acc + (ShoupMath.Lagrange(delta, set, i) * (7 + (3 * i) + (2 * i * i))));
        Assert.Equal(delta * 7, sum);
    }

    [Fact]
    public void Aes_key_wrap_with_padding_matches_bouncycastle_rfc_5649()
    {
        var kek = new byte[32];
        Random.Shared.NextBytes(kek);
        foreach (var length in new[] { 1, 7, 8, 9, 20, 531 })
        {
            var data = new byte[length];
            Random.Shared.NextBytes(data);
            var reference = new AesWrapPadEngine();
            reference.Init(true, new KeyParameter(kek));
            Assert.Equal(reference.Wrap(data, 0, data.Length), ShareWrapping.AesKeyWrapPad(kek, data));
        }
    }

    [Fact]
    public void Share_blob_is_a_pkcs8_dh_private_key_with_the_modulus_as_prime()
    {
        var v = ShoupVectors.For(2048);
        var n = v.P * v.Q;
        var share = ShoupDealer.RandomBelow(n);
        var blob = ShareWrapping.DhPrivateKeyInfo(n, 2, share);
        var info = PrivateKeyInfo.GetInstance(Asn1Object.FromByteArray(blob));
        Assert.Equal(PkcsObjectIdentifiers.DhKeyAgreement, info.PrivateKeyAlgorithm.Algorithm);
        var parameters = DHParameter.GetInstance(info.PrivateKeyAlgorithm.Parameters);
        Assert.Equal(n.ToString(), parameters.P.ToString());
        Assert.Equal("2", parameters.G.ToString());
        Assert.Equal(share.ToString(), DerInteger.GetInstance(info.ParsePrivateKey()).Value.ToString());
    }

    [Fact]
    public void Safe_prime_search_returns_a_safe_prime_with_its_top_two_bits_set()
    {
        var p = SafePrimeGenerator.Search(256, "p", null, CancellationToken.None);
        Assert.Equal(256, p.GetBitLength());
        Assert.True(p >> 254 == 3);
        var bc = new Org.BouncyCastle.Math.BigInteger(p.ToString());
        Assert.True(bc.IsProbablePrime(80));
        Assert.True(bc.ShiftRight(1).IsProbablePrime(80));
    }

    private static BigInteger Combine(BigInteger x, ShoupDealing dealing, BigInteger delta, BigInteger[] partials, params int[] indices) =>
        ShoupMath.Combine(x, indices.ToDictionary(i => i, i => partials[i - 1]), dealing.Modulus, dealing.Exponent, delta);

    [Fact]
    public void Partial_base_is_x_to_the_two_delta()
    {
        var n = new BigInteger(3233);
        Assert.Equal(BigInteger.ModPow(5, 12, n), ShoupMath.PartialBase(5, ShoupMath.Delta(3), n));
        Assert.Equal(BigInteger.ModPow(IntegerMath.ModInverse(5, n), 3, n), ShoupMath.PowSigned(5, -3, n));
        Assert.Equal(IntegerMath.ModInverse(1234, n), ShoupMath.Inverse(1234, n));
        Assert.Throws<ArithmeticException>(() => ShoupMath.Inverse(61, n));
    }
}
