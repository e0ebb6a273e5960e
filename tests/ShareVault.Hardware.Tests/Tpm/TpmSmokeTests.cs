using System.Numerics;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Tpm;

public sealed class TpmSmokeTests(Swtpm swtpm) : IClassFixture<Swtpm>, IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("sv-tpm-").FullName;

    [Fact]
    public void Raw_rsa_partial_from_swtpm_checks_out_with_the_public_key()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), _dataDir);
        var pub = store.GenerateRsaKey("k1", 2048);
        var m = new BigInteger(12345678901234567);
        var s = store.RsaRawPrivate("k1", BigEndian.ToBytes(m, pub.ByteLength));
        Assert.Equal(256, s.Length);
        Assert.Equal(m, pub.Apply(BigEndian.ToInteger(s)));
    }

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);
}
