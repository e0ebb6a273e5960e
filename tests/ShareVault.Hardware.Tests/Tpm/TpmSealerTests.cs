using System.Security.Cryptography;
using System.Text;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Tpm;

public sealed class TpmSealerTests(Swtpm swtpm) : IClassFixture<Swtpm>
{
    private static readonly byte[] Auth = "seal-auth-42"u8.ToArray();

    // PCR 16 is the debug PCR and 23 the application PCR (TCG PC Client PTP §4.6): extendable with an empty auth.
    private const int AppPcr = 23;

    [Fact]
    public void Sealed_secret_round_trips_through_its_stored_form()
    {
        using var sealer = TpmSealer.Open(swtpm.Tcti);
        var secret = Encoding.UTF8.GetBytes("mqtt client key password: correct horse battery staple");
        var sealedSecret = sealer.Seal(secret, Auth);
        var stored = sealedSecret.ToBytes();
        Assert.Equal(-1, stored.AsSpan().IndexOf(secret));
        Assert.Equal(secret, sealer.Unseal(SealedSecret.FromBytes(stored), Auth));
    }

    [Fact]
    public void Secret_sealed_to_pcrs_unseals_until_a_pcr_is_extended()
    {
        using var sealer = TpmSealer.Open(swtpm.Tcti);
        var secret = RandomNumberGenerator.GetBytes(TpmConst.MaxSealedBytes);
        var sealedSecret = sealer.Seal(secret, Auth, [0, AppPcr]);
        Assert.Equal([0, AppPcr], sealedSecret.Pcrs);
        Assert.Equal(secret, sealer.Unseal(sealedSecret, Auth));

        sealer.ExtendPcr(AppPcr, SHA256.HashData("a different boot"u8));
        var e = Assert.Throws<ShareStoreException>(() => sealer.Unseal(sealedSecret, Auth));
        Assert.Equal(ShareStoreError.PolicyFailed, e.Error);
        Assert.Equal("0x99D", e.NativeCode);
        Assert.Contains("policy check failed", e.Message, StringComparison.Ordinal);

        // Sealing afresh binds the new PCR value.
        var resealed = sealer.Seal(secret, Auth, [AppPcr]);
        Assert.Equal(secret, sealer.Unseal(resealed, Auth));
    }

    [Fact]
    public void Unseal_with_a_wrong_auth_value_fails()
    {
        using var sealer = TpmSealer.Open(swtpm.Tcti);
        var sealedSecret = sealer.Seal("s3cr3t"u8, Auth, [16]);
        var e = Assert.Throws<ShareStoreException>(() => sealer.Unseal(sealedSecret, "not-the-auth"u8));
        Assert.Equal(ShareStoreError.WrongPin, e.Error);
        Assert.Equal("0x98E", e.NativeCode);
        Assert.DoesNotContain("not-the-auth", e.ToString(), StringComparison.Ordinal);
        Assert.Equal("s3cr3t"u8.ToArray(), sealer.Unseal(sealedSecret, Auth));
    }

    [Fact]
    public void Secrets_over_128_bytes_and_bad_pcrs_are_refused()
    {
        using var sealer = TpmSealer.Open(swtpm.Tcti);
        Assert.Throws<ArgumentOutOfRangeException>(() => sealer.Seal(new byte[TpmConst.MaxSealedBytes + 1], Auth));
        Assert.Throws<ArgumentOutOfRangeException>(() => sealer.Seal([], Auth));
        Assert.Throws<ArgumentOutOfRangeException>(() => sealer.Seal([1], Auth, [24]));
        Assert.Throws<FormatException>(() => SealedSecret.FromBytes([1, 2, 3]));
    }
}
