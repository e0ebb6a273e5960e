using System.Numerics;
using ShareVault.Hardware.Custodians;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Tpm;

public sealed class TpmShareStoreTests(Swtpm swtpm, TempDataDir data) : IClassFixture<Swtpm>, IClassFixture<TempDataDir>
{
    private static string UniqueLabel() => $"k-{Guid.NewGuid():N}"[..12];

    [Fact]
    public void Custodian_key_is_born_in_the_tpm_and_can_never_leave_it()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var label = UniqueLabel();
        store.GenerateRsaKey(label, 2048);
        var area = store.ReadPublicArea(label);
        // fixedTPM + fixedParent: TPM2_Duplicate refuses the key (Part 1 §23.2); sensitiveDataOrigin: the TPM made d.
        Assert.True(area.Has(TpmConst.FixedTpm));
        Assert.True(area.Has(TpmConst.FixedParent));
        Assert.True(area.Has(TpmConst.SensitiveDataOrigin));
        Assert.True(area.Has(TpmConst.Decrypt));
        Assert.False(area.Has(TpmConst.Sign));
        Assert.Equal(TpmConst.AlgRsa, area.Type);
        Assert.Equal(2048 / 8, area.RsaModulus.Length);
        Assert.Equal(["rsa-private-key"], store.ListObjects().Where(o => o.Label == label).Select(o => o.Kind));
        // The store offers no export at all; the only private material on disk is the TPM2B_PRIVATE blob.
        Assert.DoesNotContain(typeof(TpmShareStore).GetMethods(), m => m.Name.Contains("Export", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void Key_blob_copied_to_another_tpm_is_useless_there()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var label = UniqueLabel();
        var key = store.GenerateRsaKey(label, 2048);

        using var otherTpm = new Swtpm();
        var otherData = Directory.CreateTempSubdirectory("sv-tpm-other-").FullName;
        try
        {
            var source = Path.Combine(data.Path, "tpm", "custody-t");
            var target = Directory.CreateDirectory(Path.Combine(otherData, "tpm", "custody-t")).FullName;
            File.Copy(Path.Combine(source, label + ".pub"), Path.Combine(target, label + ".pub"));
            File.Copy(Path.Combine(source, label + ".priv"), Path.Combine(target, label + ".priv"));

            using var thief = TpmShareStore.Open(otherTpm.Uri("custody-t"), otherData);
            Assert.Equal(key, thief.GetRsaPublicKey(label));
            var e = Assert.Throws<ShareStoreException>(() => thief.RsaRawPrivate(label, BigEndian.ToBytes(new BigInteger(7), key.ByteLength)));
            // The blob is encrypted and HMAC-protected under the other TPM's storage primary (Part 1 §22.4): TPM_RC_INTEGRITY.
            Assert.Equal(ShareStoreError.DeviceError, e.Error);
            Assert.Contains("integrity", e.Message, StringComparison.Ordinal);
            Assert.Equal("0x1DF", e.NativeCode); // TPM_RC_INTEGRITY + TPM_RC_P + TPM_RC_1: inPrivate failed its check
        }
        finally
        {
            Directory.Delete(otherData, recursive: true);
        }
    }

    [Fact]
    public void Wrong_auth_value_gives_a_decoded_response_code_without_the_secret()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var label = UniqueLabel();
        var key = store.GenerateRsaKey(label, 2048);
        using var wrong = TpmShareStore.Open(swtpm.Uri("custody-t", auth: "guess-0000"), data.Path);
        var e = Assert.Throws<ShareStoreException>(() => wrong.RsaRawPrivate(label, BigEndian.ToBytes(new BigInteger(3), key.ByteLength)));
        Assert.Equal(ShareStoreError.WrongPin, e.Error);
        // TPM_RC_AUTH_FAIL for session 1 (Part 2 §6.6.3): the key counts failures towards lockout.
        Assert.Equal("0x98E", e.NativeCode);
        Assert.Contains("auth value check failed", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("guess-0000", e.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("tpm-auth-1234", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Many_sequential_operations_never_exhaust_the_object_slots()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var labels = new[] { UniqueLabel(), UniqueLabel() };
        var keys = labels.Select(l => store.GenerateRsaKey(l, 2048)).ToArray();
        // swtpm holds 3 loaded objects; 60 operations on alternating keys would fail by the 2nd if anything leaked.
        for (var i = 0; i < 60; i++)
        {
            var k = keys[i % 2];
            var m = new BigInteger(1000 + i);
            var s = store.RsaRawPrivate(labels[i % 2], BigEndian.ToBytes(m, k.ByteLength));
            Assert.Equal(m, k.Apply(BigEndian.ToInteger(s)));
        }
    }

    [Fact]
    public async Task Concurrent_callers_are_serialised_on_the_one_esys_context()
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);
        var label = UniqueLabel();
        var key = store.GenerateRsaKey(label, 2048);
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(() =>
        {
            var m = new BigInteger(500 + i);
            return key.Apply(BigEndian.ToInteger(store.RsaRawPrivate(label, BigEndian.ToBytes(m, key.ByteLength)))) == m;
        })));
        Assert.All(results, Assert.True);
    }

    [Fact]
    public void Registry_opens_tpm_custodians_with_blobs_in_its_data_folder()
    {
        using var registry = new ShareStoreRegistry(data.Path);
        var label = UniqueLabel();
        var address = CustodianAddress.Parse(swtpm.Uri("custody-r"), label);
        Assert.Equal("custody-r", address.Name);
        Assert.Equal(CustodianKind.Tpm, address.Kind);
        var store = registry.Get(address);
        var key = store.GenerateRsaKey(address.ObjectLabel, 2048);
        Assert.True(File.Exists(Path.Combine(data.Path, "tpm", "custody-r", label + ".priv")));
        Assert.Equal(new BigInteger(99), key.Apply(BigEndian.ToInteger(store.RsaRawPrivate(label, BigEndian.ToBytes(new BigInteger(99), key.ByteLength)))));
    }

    [Theory]
    [InlineData("tpm:object=../etc?tcti=swtpm:host=127.0.0.1,port=1")]
    [InlineData("tpm:tcti=x")]
    [InlineData("tpm:object=a?tcti=swtpm:host=127.0.0.1,port=1&colour=blue")]
    [InlineData("tpm:object=a?timeout=-1")]
    public void Malformed_uris_are_refused_with_a_reason(string uri)
    {
        var e = Assert.Throws<ShareStoreException>(() => TpmUri.Parse(uri));
        Assert.Equal(ShareStoreError.BadUri, e.Error);
    }

    [Fact]
    public void Uri_names_object_tcti_pin_source_and_timeout()
    {
        var uri = TpmUri.Parse("tpm:object=custody-t?tcti=swtpm:host=127.0.0.1,port=2321&pin-source=file:/etc/sharevault/t.pin&timeout=2.5");
        Assert.Equal("custody-t", uri.ObjectName);
        Assert.Equal("swtpm:host=127.0.0.1,port=2321", uri.Tcti);
        Assert.Equal("file:/etc/sharevault/t.pin", uri.PinSource);
        Assert.Equal(TimeSpan.FromSeconds(2.5), uri.CommandTimeout);
        Assert.Equal(TpmUri.DefaultTcti, TpmUri.Parse("tpm:object=x").Tcti);
    }
}
