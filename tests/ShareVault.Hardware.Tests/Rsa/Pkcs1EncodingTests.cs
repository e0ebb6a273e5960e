using System.Security.Cryptography;

namespace ShareVault.Hardware.Tests.Rsa;

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
}
