using System.Numerics;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;
using ShareVault.Hardware.Pkcs11;
using ShareVault.TestSupport;
using Pkcs11Uri = ShareVault.Hardware.Pkcs11.Pkcs11Uri;

namespace ShareVault.Hardware.Tests.Pkcs11;

public sealed class Pkcs11ShareStoreTests
{
    private static readonly SoftHsm Hsm = SoftHsm.Shared;

    private static string NewLabel() => $"k-{Guid.NewGuid():N}"[..14];

    [Fact]
    public void Raw_private_operation_inside_the_token_inverts_the_public_operation()
    {
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(Hsm.Uri("custody-d")));
        var label = NewLabel();
        var key = store.GenerateRsaKey(label, 2048);

        var message = BigInteger.Parse("123456789012345678901234567890", System.Globalization.CultureInfo.InvariantCulture);
        var signature = store.RsaRawPrivate(label, BigEndian.ToBytes(message, key.ByteLength));

        Assert.Equal(key.ByteLength, signature.Length);
        Assert.Equal(message, key.Apply(BigEndian.ToInteger(signature)));
        Assert.Equal(65537, (int)key.Exponent);
        Assert.Equal(2048, key.BitLength);
        Assert.Equal(key, store.GetRsaPublicKey(label));
        store.DeleteKey(label);
    }

    [Fact]
    public void Private_exponent_of_a_share_key_cannot_be_read_through_pkcs11()
    {
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(Hsm.Uri("custody-d")));
        var label = NewLabel();
        store.GenerateRsaKey(label, 2048);

        var attributes = store.WithSession(session =>
        {
            var handle = Assert.Single(store.FindObjects(session, CKO.CKO_PRIVATE_KEY, label));
            var flags = session.GetAttributeValue(handle, [CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_PRIVATE]);
            Pkcs11Exception? error = null;
            IObjectAttribute? exponent = null;
            try
            {
                exponent = session.GetAttributeValue(handle, [CKA.CKA_PRIVATE_EXPONENT])[0];
            }
            catch (Pkcs11Exception e)
            {
                error = e;
            }

            return (flags, exponent, error);
        });

        Assert.True(attributes.flags[0].GetValueAsBool(), "CKA_SENSITIVE");
        Assert.False(attributes.flags[1].GetValueAsBool(), "CKA_EXTRACTABLE");
        Assert.True(attributes.flags[2].GetValueAsBool(), "CKA_PRIVATE");
        // PKCS#11 v2.40 §5.7: C_GetAttributeValue on a sensitive attribute returns CKR_ATTRIBUTE_SENSITIVE.
        if (attributes.error is not null)
        {
            Assert.Equal(CKR.CKR_ATTRIBUTE_SENSITIVE, attributes.error.RV);
        }
        else
        {
            Assert.True(attributes.exponent!.CannotBeRead);
        }

        store.DeleteKey(label);
    }

    [Fact]
    public void Wrong_pin_is_reported_as_such_without_the_pin()
    {
        var pinFile = Path.GetTempFileName();
        File.WriteAllText(pinFile, "not-the-pin-4242");
        try
        {
            var uri = $"pkcs11:token=wrong-pin-probe?module-path={SoftHsm.ModulePath}&pin-source=file:{pinFile}";
            var error = Assert.Throws<ShareStoreException>(() => Pkcs11ShareStore.Open(Pkcs11Uri.Parse(uri)));

            Assert.Equal(ShareStoreError.WrongPin, error.Error);
            Assert.Equal("CKR_PIN_INCORRECT", error.NativeCode);
            Assert.Contains("wrong-pin-probe", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("not-the-pin-4242", error.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(pinFile);
        }
    }

    [Fact]
    public void Missing_module_is_named()
    {
        var error = Assert.Throws<ShareStoreException>(() =>
            Pkcs11ShareStore.Open(Pkcs11Uri.Parse($"pkcs11:token=custody-a?module-path=/nonexistent/libpkcs11.so&pin-source=file:{Hsm.PinFile("custody-a")}")));

        Assert.Equal(ShareStoreError.ModuleNotFound, error.Error);
        Assert.Contains("/nonexistent/libpkcs11.so", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_a_pkcs11_module_is_refused_clearly()
    {
        var error = Assert.Throws<ShareStoreException>(() =>
            Pkcs11ShareStore.Open(Pkcs11Uri.Parse($"pkcs11:token=custody-a?module-path=/etc/hostname&pin-source=file:{Hsm.PinFile("custody-a")}")));

        Assert.Equal(ShareStoreError.ModuleNotFound, error.Error);
    }

    [Fact]
    public void Missing_token_is_named()
    {
        var error = Assert.Throws<ShareStoreException>(() =>
            Pkcs11ShareStore.Open(Pkcs11Uri.Parse($"pkcs11:token=no-such-token?module-path={SoftHsm.ModulePath}&pin-source=file:{Hsm.PinFile("custody-a")}")));

        Assert.Equal(ShareStoreError.TokenNotFound, error.Error);
        Assert.Contains("no-such-token", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_key_is_named()
    {
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(Hsm.Uri("custody-d")));

        var error = Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate("no-such-key", new byte[256]));

        Assert.Equal(ShareStoreError.KeyNotFound, error.Error);
        Assert.Contains("no-such-key", error.Message, StringComparison.Ordinal);
        Assert.Contains("custody-d", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_pin_source_is_reported()
    {
        var error = Assert.Throws<ShareStoreException>(() =>
            Pkcs11ShareStore.Open(Pkcs11Uri.Parse($"pkcs11:token=custody-a?module-path={SoftHsm.ModulePath}&pin-source=file:/nonexistent/pin")));

        Assert.Equal(ShareStoreError.PinUnavailable, error.Error);
    }

    [Fact]
    public void A_pin_inside_the_uri_is_refused()
    {
        var error = Assert.Throws<ShareStoreException>(() => Pkcs11Uri.Parse("pkcs11:token=custody-a?pin-value=1234"));

        Assert.Equal(ShareStoreError.BadUri, error.Error);
        Assert.DoesNotContain("1234", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_generation_refuses_to_overwrite_an_existing_label()
    {
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(Hsm.Uri("custody-d")));
        var label = NewLabel();
        store.GenerateRsaKey(label, 2048);

        var error = Assert.Throws<ShareStoreException>(() => store.GenerateRsaKey(label, 2048));

        Assert.Equal(ShareStoreError.KeyExists, error.Error);
        store.DeleteKey(label);
    }

    [Fact]
    public async Task Concurrent_partials_share_one_login_and_all_verify()
    {
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(Hsm.Uri("custody-e")));
        var label = NewLabel();
        var key = store.GenerateRsaKey(label, 2048);

        var results = await Task.WhenAll(Enumerable.Range(1, 32).Select(i => Task.Run(() =>
        {
            var m = new BigInteger(i * 7919);
            return key.Apply(BigEndian.ToInteger(store.RsaRawPrivate(label, BigEndian.ToBytes(m, key.ByteLength)))) == m;
        })));

        Assert.All(results, Assert.True);
        store.DeleteKey(label);
    }
}
