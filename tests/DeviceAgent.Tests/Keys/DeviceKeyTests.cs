using System.Security.Cryptography;
using System.Text.Json;
using DeviceAgent.Keys;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.TestSupport;

namespace DeviceAgent.Tests.Keys;

public sealed class DeviceKeyTests
{
    private static string NewLabel() => $"dk-{Guid.NewGuid():N}"[..12];

    [Fact]
    public void Software_key_is_refused_unless_explicitly_allowed()
    {
        using var dir = new TempDir();
        var uri = "file:" + dir.Sub("device.pem");
        var e = Assert.Throws<InvalidOperationException>(() => DeviceKey.Create(uri, allowSoftwareKey: false));
        Assert.Contains("explicitly allowed", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.Sub("device.pem")));
    }

    [Fact]
    public void Software_key_file_is_owner_only_and_reopens_to_the_same_public_key()
    {
        using var dir = new TempDir();
        var uri = "file:" + dir.Sub("device.pem");
        string pem;
        using (var created = DeviceKey.Create(uri, allowSoftwareKey: true))
        {
            pem = created.PublicPem();
            Assert.False(created.IsHardware);
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.Sub("device.pem")));
        }

        using var reopened = DeviceKey.Open(uri, allowSoftwareKey: true);
        Assert.Equal(pem, reopened.PublicPem());
        Assert.Throws<IOException>(() => DeviceKey.Create(uri, allowSoftwareKey: true));
    }

    [Fact]
    public void Pkcs11_device_key_is_born_in_the_token_and_signs_verifiable_evidence()
    {
        var uri = SoftHsm.Shared.Uri("device-hsm", NewLabel());
        using var key = DeviceKey.Create(uri, allowSoftwareKey: false);
        Assert.True(key.IsHardware);
        Assert.Throws<CryptographicException>(() => key.Signer.ExportParameters(includePrivateParameters: true));

        var record = new EvidenceRecord("pi-hsm-1", 1, DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000), ReadOnlyMemory<byte>.Empty,
            [new Reading("temperature", "Cel", 4.25, DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000))]);
        var cose = EvidenceSigner.Sign(record, key.Signer);

        using var verifier = ECDsa.Create();
        verifier.ImportFromPem(key.PublicPem());
        Assert.True(EvidenceVerifier.Verify(cose, _ => verifier).IsValid);

        using var reopened = DeviceKey.Open(uri, allowSoftwareKey: false);
        Assert.Equal(key.PublicPem(), reopened.PublicPem());
        Assert.True(EvidenceVerifier.Verify(EvidenceSigner.Sign(record, reopened.Signer), _ => verifier).IsValid);
    }

    [Fact]
    public void Pkcs11_key_creation_refuses_to_replace_an_existing_key_and_opening_a_missing_one_says_so()
    {
        var uri = SoftHsm.Shared.Uri("device-hsm", NewLabel());
        using (DeviceKey.Create(uri, allowSoftwareKey: false))
        {
        }

        Assert.Equal(ShareStoreError.KeyExists, Assert.Throws<ShareStoreException>(() => DeviceKey.Create(uri, false)).Error);
        Assert.Equal(ShareStoreError.KeyNotFound, Assert.Throws<ShareStoreException>(() => DeviceKey.Open(SoftHsm.Shared.Uri("device-hsm", NewLabel()), false)).Error);
    }

    [Fact]
    public void Pkcs11_private_key_is_sensitive_and_not_extractable()
    {
        var label = NewLabel();
        using var key = DeviceKey.Create(SoftHsm.Shared.Uri("device-hsm", label), allowSoftwareKey: false);
        var protection = Assert.IsType<ShareVault.Hardware.Pkcs11.Pkcs11DeviceKey>(key.Hardware).ReadProtection();
        Assert.Equal(new ShareVault.Hardware.Pkcs11.DeviceKeyProtection(
            Token: true, Private: true, Sensitive: true, AlwaysSensitive: true, Extractable: false, NeverExtractable: true), protection);
    }

    [Fact]
    public void Tpm_device_key_is_born_in_swtpm_signs_there_and_reopens_from_its_blobs()
    {
        using var tpm = new Swtpm();
        var dataDir = Directory.CreateTempSubdirectory("sv-tpmkey-").FullName;
        var uri = tpm.Uri("device-1");
        byte[] signature;
        string pem;
        using (var created = DeviceKey.Create(uri, allowSoftwareKey: false, dataDir))
        {
            Assert.True(created.IsHardware);
            signature = created.Signer.SignData("evidence"u8, HashAlgorithmName.SHA256);
            pem = created.PublicPem();
        }

        using var reopened = DeviceKey.Open(uri, allowSoftwareKey: false, dataDir);
        using var verifier = ECDsa.Create();
        verifier.ImportFromPem(pem);
        Assert.True(verifier.VerifyData("evidence"u8, signature, HashAlgorithmName.SHA256));
        Assert.Equal(pem, reopened.PublicPem());
        Assert.Throws<CryptographicException>(() => reopened.Signer.ExportParameters(includePrivateParameters: true));
        Directory.Delete(dataDir, recursive: true);
    }

    [Fact]
    public void Public_jwk_names_the_device_and_matches_the_pem()
    {
        using var dir = new TempDir();
        using var key = DeviceKey.Create("file:" + dir.Sub("k.pem"), allowSoftwareKey: true);
        using var jwk = JsonDocument.Parse(key.PublicJwk("pi-1"));
        var root = jwk.RootElement;
        Assert.Equal("EC", root.GetProperty("kty").GetString());
        Assert.Equal("P-256", root.GetProperty("crv").GetString());
        Assert.Equal("pi-1", root.GetProperty("kid").GetString());
        Assert.Equal("ES256", root.GetProperty("alg").GetString());
        var q = key.Signer.ExportParameters(false).Q;
        Assert.Equal(q.X, Base64Url.Decode(root.GetProperty("x").GetString()!));
        Assert.Equal(q.Y, Base64Url.Decode(root.GetProperty("y").GetString()!));
        Assert.False(root.TryGetProperty("d", out _));
    }

    [Fact]
    public void Pipeline_signs_with_a_pkcs11_key()
    {
        using var dir = new TempDir();
        using var key = DeviceKey.Create(SoftHsm.Shared.Uri("device-hsm", NewLabel()), allowSoftwareKey: false);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        using var pipeline = new AgentPipeline("pi-hsm-2", [new CountingThermometer()], key.Signer, SequenceState.Open(dir.Path, outbox), outbox, TimeProvider.System);
        var made = pipeline.CaptureNow();
        using var verifier = ECDsa.Create(key.Signer.ExportParameters(false));
        Assert.True(EvidenceVerifier.Verify(made.Cose, _ => verifier).IsValid);
    }
}
