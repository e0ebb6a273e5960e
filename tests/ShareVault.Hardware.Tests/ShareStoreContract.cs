using System.Numerics;

namespace ShareVault.Hardware.Tests;

/// <summary>
/// The contract of the <see cref="IShareStore"/> seam, run against every real implementation
/// (SoftHSM through PKCS#11, swtpm through the TCG TSS). A subclass only says how to open its store.
/// </summary>
public abstract class ShareStoreContract
{
    /// <summary>The store, opened with the right PIN / auth value. Disposed by the test.</summary>
    protected abstract IShareStore OpenStore();

    /// <summary>
    /// Opens the same kind of store with a wrong PIN / auth value and tries a private operation on
    /// <paramref name="label"/> (a key the right store made, where the store kind allows).
    /// </summary>
    protected abstract void UseWithWrongAuth(string label, byte[] input);

    protected static string UniqueLabel() => $"k-{Guid.NewGuid():N}"[..12];

    [Fact]
    public void Generated_key_is_rsa_2048_with_exponent_65537()
    {
        using var store = OpenStore();
        var key = store.GenerateRsaKey(UniqueLabel(), 2048);
        Assert.Equal(2048, key.BitLength);
        Assert.Equal(new BigInteger(65537), key.Exponent);
    }

    [Fact]
    public void Public_export_returns_the_generated_key()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        var generated = store.GenerateRsaKey(label, 2048);
        Assert.Equal(generated, store.GetRsaPublicKey(label));
        using var reopened = OpenStore();
        Assert.Equal(generated, reopened.GetRsaPublicKey(label));
    }

    [Fact]
    public void Raw_private_operation_is_inverted_by_the_public_key()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        var key = store.GenerateRsaKey(label, 2048);
        foreach (var m in new[] { BigInteger.One, new BigInteger(0x1234_5678_9ABC), key.Modulus - 2, BigInteger.Parse("98765432109876543210987654321", System.Globalization.CultureInfo.InvariantCulture) })
        {
            var s = store.RsaRawPrivate(label, BigEndian.ToBytes(m, key.ByteLength));
            Assert.Equal(key.ByteLength, s.Length);
            if (m > BigInteger.One)
            {
                Assert.NotEqual(m, BigEndian.ToInteger(s));
            }

            Assert.Equal(m, key.Apply(BigEndian.ToInteger(s)));
        }
    }

    [Fact]
    public void Missing_key_is_reported_as_not_found()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        var e1 = Assert.Throws<ShareStoreException>(() => store.GetRsaPublicKey(label));
        Assert.Equal(ShareStoreError.KeyNotFound, e1.Error);
        var e2 = Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate(label, new byte[256]));
        Assert.Equal(ShareStoreError.KeyNotFound, e2.Error);
        Assert.Contains(label, e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_auth_is_refused()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        var key = store.GenerateRsaKey(label, 2048);
        var e = Assert.Throws<ShareStoreException>(() => UseWithWrongAuth(label, BigEndian.ToBytes(new BigInteger(42), key.ByteLength)));
        Assert.Equal(ShareStoreError.WrongPin, e.Error);
        Assert.NotNull(e.NativeCode);
    }

    [Fact]
    public void Deleted_key_is_gone_and_deleting_again_is_harmless()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        store.GenerateRsaKey(label, 2048);
        Assert.Contains(store.ListObjects(), o => o.Label == label && o.Kind == "rsa-private-key");
        store.DeleteKey(label);
        Assert.DoesNotContain(store.ListObjects(), o => o.Label == label);
        Assert.Equal(ShareStoreError.KeyNotFound, Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate(label, new byte[256])).Error);
        store.DeleteKey(label);
    }

    [Fact]
    public void Generating_over_an_existing_label_is_refused()
    {
        using var store = OpenStore();
        var label = UniqueLabel();
        var first = store.GenerateRsaKey(label, 2048);
        Assert.Equal(ShareStoreError.KeyExists, Assert.Throws<ShareStoreException>(() => store.GenerateRsaKey(label, 2048)).Error);
        Assert.Equal(first, store.GetRsaPublicKey(label));
    }
}
