using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace ShareVault.Hardware;

/// <summary>An RSA public key (n, e), as a custodian's key or a quorum's composite key.</summary>
public sealed class RsaPublicKey : IEquatable<RsaPublicKey>
{
    public RsaPublicKey(BigInteger modulus, BigInteger exponent)
    {
        if (modulus.Sign <= 0 || exponent.Sign <= 0)
        {
            throw new ArgumentException("RSA modulus and exponent must be positive");
        }

        Modulus = modulus;
        Exponent = exponent;
    }

    public BigInteger Modulus { get; }

    public BigInteger Exponent { get; }

    /// <summary>k in RFC 8017: the modulus length in bytes.</summary>
    public int ByteLength => BigEndian.ByteLength(Modulus);

    public long BitLength => Modulus.GetBitLength();

    public static RsaPublicKey FromBytes(ReadOnlySpan<byte> modulus, ReadOnlySpan<byte> exponent) =>
        new(BigEndian.ToInteger(modulus), BigEndian.ToInteger(exponent));

    /// <summary>RSAVP1 (RFC 8017 §5.2.2): s^e mod n.</summary>
    public BigInteger Apply(BigInteger signature) => BigInteger.ModPow(signature, Exponent, Modulus);

    public RSA ToRsa()
    {
        var rsa = RSA.Create();
        rsa.ImportParameters(new RSAParameters
        {
            Modulus = BigEndian.ToBytes(Modulus),
            Exponent = BigEndian.ToBytes(Exponent),
        });
        return rsa;
    }

    /// <summary>SubjectPublicKeyInfo PEM, readable by <c>openssl pkey -pubin</c>.</summary>
    public string ToPem()
    {
        using var rsa = ToRsa();
        return rsa.ExportSubjectPublicKeyInfoPem();
    }

    /// <summary>JWK (RFC 7517 §4, RFC 7518 §6.3.1) with <c>use=sig</c>, <c>alg=RS256</c>.</summary>
    public JsonObject ToJwk(string kid) => new()
    {
        ["kty"] = "RSA",
        ["kid"] = kid,
        ["use"] = "sig",
        ["alg"] = "RS256",
        ["n"] = Base64Url.Encode(BigEndian.ToBytes(Modulus)),
        ["e"] = Base64Url.Encode(BigEndian.ToBytes(Exponent)),
    };

    public static RsaPublicKey FromJwk(JsonNode jwk)
    {
        var n = jwk["n"]?.GetValue<string>() ?? throw new FormatException("JWK has no 'n'");
        var e = jwk["e"]?.GetValue<string>() ?? throw new FormatException("JWK has no 'e'");
        return FromBytes(Base64Url.Decode(n), Base64Url.Decode(e));
    }

    public bool Equals(RsaPublicKey? other) => other is not null && Modulus == other.Modulus && Exponent == other.Exponent;

    public override bool Equals(object? obj) => Equals(obj as RsaPublicKey);

    public override int GetHashCode() => HashCode.Combine(Modulus, Exponent);

    public override string ToString() => $"RSA-{BitLength} e={Exponent}";
}
