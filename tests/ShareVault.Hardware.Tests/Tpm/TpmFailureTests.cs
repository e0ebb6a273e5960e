using System.Diagnostics;
using System.Numerics;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Tpm;

/// <summary>A TPM that is absent, dies or freezes gives a clear error quickly, never a hang. Each test owns its swtpm.</summary>
public sealed class TpmFailureTests(TempDataDir data) : IClassFixture<TempDataDir>
{
    [Fact]
    public void No_tpm_at_the_address_is_reported_as_unreachable()
    {
        // Reserved, so no server of ours binds it, and below the ephemeral range, so the connection
        // cannot be made to itself (a TCP simultaneous open when its local port equals the remote one).
        var port = LoopbackPorts.Reserve();

        var pin = Path.Combine(data.Path, "nobody.pin");
        File.WriteAllText(pin, "x");
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ShareStoreException>(() =>
            TpmShareStore.Open($"tpm:object=nobody?tcti=swtpm:host=127.0.0.1,port={port}&pin-source=file:{pin}", data.Path));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(ShareStoreError.DeviceUnreachable, e.Error);
        Assert.True(e.IsTransient);
        Assert.StartsWith($"TPM unreachable at swtpm:host=127.0.0.1,port={port}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Swtpm_stopped_mid_run_gives_a_clear_error_within_seconds_and_the_store_recovers_when_it_is_back()
    {
        using var swtpm = new Swtpm();
        var (healthy, store, key) = WarmedUp(swtpm, "stop-test", "3");
        using var _ = healthy;
        using var __ = store;
        var input = BigEndian.ToBytes(new BigInteger(77), key.ByteLength);

        swtpm.Stop();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate("stop-test", input));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal(ShareStoreError.DeviceUnreachable, e.Error);
        Assert.Contains($"TPM unreachable at {swtpm.Tcti}", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.NativeCode);

        // Still down: the next call fails fast too (it tries to reconnect and is refused).
        clock.Restart();
        Assert.Equal(ShareStoreError.DeviceUnreachable, Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate("stop-test", input)).Error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Frozen_swtpm_hits_the_command_timeout_instead_of_hanging()
    {
        using var swtpm = new Swtpm();
        var (healthy, store, key) = WarmedUp(swtpm, "freeze-test", "1.5");
        using var _ = healthy;
        using var __ = store;
        var input = BigEndian.ToBytes(new BigInteger(78), key.ByteLength);

        swtpm.Freeze();
        try
        {
            var clock = Stopwatch.StartNew();
            var e = Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate("freeze-test", input));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
            Assert.Equal(ShareStoreError.DeviceUnreachable, e.Error);
            Assert.Contains("no answer to TPM2_RSA_Decrypt within 1.5 s", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            swtpm.Thaw();
        }
    }

    /// <summary>
    /// The healthy part of a failure test, done through a store with the default command timeout:
    /// connect, create the key, use it three times. Only then a store with the short timeout under
    /// test is opened on the same connection (swtpm serves one client at a time, so a healthy call
    /// that merely missed a short timeout on a loaded machine would leave the TPM unusable to the test).
    /// The healthy store stays open so the connection it made is the one the short one shares.
    /// </summary>
    private (TpmShareStore Healthy, TpmShareStore Store, RsaPublicKey Key) WarmedUp(Swtpm swtpm, string label, string timeoutSeconds)
    {
        var healthy = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var key = healthy.GenerateRsaKey(label, 2048);
        var input = BigEndian.ToBytes(new BigInteger(76), key.ByteLength);
        for (var i = 0; i < 3; i++)
        {
            healthy.RsaRawPrivate(label, input);
        }

        return (healthy, TpmShareStore.Open(swtpm.Uri("custody-t", timeoutSeconds: timeoutSeconds), data.Path), key);
    }
}
