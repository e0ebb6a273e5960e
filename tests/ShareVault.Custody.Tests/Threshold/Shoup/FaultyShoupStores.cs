using System.Numerics;
using ShareVault.Hardware;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

/// <summary>
/// A real token behind a wrapper that spoils its partials: how a token with a broken DH
/// implementation (or one that does not accept a composite "prime") looks to the coordinator.
/// Everything else, including the wrapped import, goes to the real token.
/// </summary>
internal class WrongPartialStore(IShoupShareStore inner) : IShoupShareStore
{
    public int PersistentImports { get; private set; }

    public string CustodianName => inner.CustodianName;

    public void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, bool persistent)
    {
        if (persistent)
        {
            PersistentImports++;
        }

        inner.ImportShoupShare(objectLabel, wrap, persistent);
    }

    public virtual byte[] ShoupPartial(string objectLabel, ReadOnlySpan<byte> z)
    {
        var partial = inner.ShoupPartial(objectLabel, z);
        partial[^1] ^= 0x01;
        return partial;
    }

    public RsaPublicKey GenerateRsaKey(string objectLabel, int bits) => inner.GenerateRsaKey(objectLabel, bits);

    public RsaPublicKey GetRsaPublicKey(string objectLabel) => inner.GetRsaPublicKey(objectLabel);

    public byte[] RsaRawPrivate(string objectLabel, ReadOnlySpan<byte> input) => inner.RsaRawPrivate(objectLabel, input);

    public void DeleteKey(string objectLabel) => inner.DeleteKey(objectLabel);

    public IReadOnlyList<StoredObject> ListObjects() => inner.ListObjects();

    public void Dispose()
    {
        // The inner store belongs to the registry.
    }

    protected byte[] Correct(string objectLabel, ReadOnlySpan<byte> z) => inner.ShoupPartial(objectLabel, z);
}

/// <summary>Correct on the verification base v, wrong on everything else: only subset search finds it.</summary>
internal sealed class WrongOnMessagesStore(IShoupShareStore inner, BigInteger verificationBase) : WrongPartialStore(inner)
{
    public override byte[] ShoupPartial(string objectLabel, ReadOnlySpan<byte> z) =>
        new BigInteger(z, isUnsigned: true, isBigEndian: true) == verificationBase ? Correct(objectLabel, z) : base.ShoupPartial(objectLabel, z);
}
