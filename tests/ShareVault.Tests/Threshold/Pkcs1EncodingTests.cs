using System.Security.Cryptography;
using ShareVault.Hardware;
using ShareVault.Threshold;

namespace ShareVault.Tests.Threshold;

public sealed class Pkcs1EncodingTests
{
    [Fact]
    public void Encoding_signed_with_a_software_key_is_what_dotnet_produces()
    {
        using var rsa = RSA.Create(2048);
        var p = rsa.ExportParameters(includePrivateParameters: true);
        var n = BigEndian.ToInteger(p.Modulus);
        var d = BigEndian.ToInteger(p.D);
        var message = "evidence"u8.ToArray();

        var em = Pkcs1Encoding.EncodeSha256(message, 256);
        var signature = BigEndian.ToBytes(System.Numerics.BigInteger.ModPow(BigEndian.ToInteger(em), d, n), 256);

        Assert.Equal(rsa.SignData(message, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), signature);
    }

    [Fact]
    public void Crt_recombines_residues()
    {
        var result = IntegerMath.Crt([2, 3, 2], [3, 5, 7]);
        Assert.Equal(23, (int)result);
    }
}
