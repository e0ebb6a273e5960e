using System.Security.Cryptography;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Tpm;

public sealed class TpmDeviceKeyTests(Swtpm swtpm, TempDataDir data) : IClassFixture<Swtpm>, IClassFixture<TempDataDir>
{
    private string NewUri() => swtpm.Uri($"device-{Guid.NewGuid():N}"[..15], auth: "device-auth");

    [Fact]
    public void Tpm_ecdsa_signature_verifies_with_dotnet_ecdsa()
    {
        using var key = TpmDeviceKey.Create(NewUri(), data.Path);
        var message = "evidence: leak detected at 2026-11-24T10:00:00Z"u8.ToArray();
        var signature = key.SignHash(SHA256.HashData(message));
        Assert.Equal(64, signature.Length);

        using var verifier = ECDsa.Create(key.PublicKey);
        Assert.True(verifier.VerifyData(message, signature, HashAlgorithmName.SHA256));
        Assert.False(verifier.VerifyData("tampered"u8, signature, HashAlgorithmName.SHA256));

        using var fromPem = ECDsa.Create();
        fromPem.ImportFromPem(key.ToPem());
        Assert.True(fromPem.VerifyData(message, signature, HashAlgorithmName.SHA256));
    }

    [Fact]
    public void Device_key_reopens_from_its_blobs_and_signs_the_same_identity()
    {
        var uri = NewUri();
        ECParameters created;
        using (var key = TpmDeviceKey.Create(uri, data.Path))
        {
            created = key.PublicKey;
            Assert.Equal(ShareStoreError.KeyExists, Assert.Throws<ShareStoreException>(() => TpmDeviceKey.Create(uri, data.Path)).Error);
        }

        using var reopened = TpmDeviceKey.Open(uri, data.Path);
        Assert.Equal(created.Q.X, reopened.PublicKey.Q.X);
        Assert.Equal(created.Q.Y, reopened.PublicKey.Q.Y);
        var hash = SHA256.HashData("again"u8);
        using var verifier = ECDsa.Create(created);
        Assert.True(verifier.VerifyHash(hash, reopened.SignHash(hash)));
        var area = reopened.PublicArea;
        Assert.True(area.Has(TpmConst.FixedTpm | TpmConst.FixedParent | TpmConst.SensitiveDataOrigin | TpmConst.Sign));
    }

    [Fact]
    public void Public_key_exports_as_jwk_and_cose_key()
    {
        using var key = TpmDeviceKey.Create(NewUri(), data.Path);
        var jwk = key.ToJwk("dev-1");
        Assert.Equal("EC", (string?)jwk["kty"]);
        Assert.Equal("P-256", (string?)jwk["crv"]);
        Assert.Equal(key.PublicKey.Q.X, Base64Url.Decode((string)jwk["x"]!));
        Assert.Equal(key.PublicKey.Q.Y, Base64Url.Decode((string)jwk["y"]!));

        var cose = key.ToCoseKey();
        var reader = new System.Formats.Cbor.CborReader(cose, System.Formats.Cbor.CborConformanceMode.Ctap2Canonical);
        Assert.Equal(5, reader.ReadStartMap());
        var map = new Dictionary<int, object>();
        for (var i = 0; i < 5; i++)
        {
            var label = reader.ReadInt32();
            map[label] = reader.PeekState() == System.Formats.Cbor.CborReaderState.ByteString ? reader.ReadByteString() : reader.ReadInt32();
        }

        Assert.Equal(2, map[1]);
        Assert.Equal(-7, map[3]);
        Assert.Equal(1, map[-1]);
        Assert.Equal(key.PublicKey.Q.X, (byte[])map[-2]);
        Assert.Equal(key.PublicKey.Q.Y, (byte[])map[-3]);
    }

    [Fact]
    public void Hardware_ecdsa_over_the_tpm_key_signs_and_refuses_private_export()
    {
        using var key = TpmDeviceKey.Create(NewUri(), data.Path);
        using var ecdsa = new HardwareECDsa(key);
        var data1 = "cose payload"u8.ToArray();
        var signature = ecdsa.SignData(data1, HashAlgorithmName.SHA256);
        using var verifier = ECDsa.Create(key.PublicKey);
        Assert.True(verifier.VerifyData(data1, signature, HashAlgorithmName.SHA256));
        Assert.Throws<CryptographicException>(() => ecdsa.ExportParameters(includePrivateParameters: true));
    }

    [Fact]
    public void Opening_a_device_key_that_was_never_created_says_so()
    {
        var e = Assert.Throws<ShareStoreException>(() => TpmDeviceKey.Open(NewUri(), data.Path));
        Assert.Equal(ShareStoreError.KeyNotFound, e.Error);
    }
}
