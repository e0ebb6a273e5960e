using System.Numerics;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>The public parameters of a Shoup key, read from its record.</summary>
internal sealed class ShoupKey
{
    private ShoupKey(KeyRecord record, ShoupPublicRecord shoup)
    {
        Record = record;
        PublicKey = RsaPublicKey.FromBytes(Base64Url.Decode(shoup.Modulus), Base64Url.Decode(shoup.Exponent));
        VerificationBase = BigEndian.ToInteger(Base64Url.Decode(shoup.VerificationBase));
        Delta = ShoupMath.Delta(shoup.Players);
    }

    public KeyRecord Record { get; }

    public RsaPublicKey PublicKey { get; }

    public BigInteger Modulus => PublicKey.Modulus;

    public BigInteger VerificationBase { get; }

    public BigInteger Delta { get; }

    public static ShoupKey From(KeyRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Scheme != KeyScheme.ShoupRsa || record.Shoup is not { } shoup)
        {
            throw new KeyCatalogException($"Key '{record.Name}' is not a {KeySchemeText.ShoupRsa} key with public parameters");
        }

        if (record.Custodians.Any(c => c.ShareIndex is null || c.VerificationValue is null))
        {
            throw new KeyCatalogException($"Key '{record.Name}' is damaged: a custodian lacks its share index or verification value");
        }

        return new ShoupKey(record, shoup);
    }

    public static int Index(CustodianRecord custodian) => custodian.ShareIndex!.Value;

    public static BigInteger VerificationValue(CustodianRecord custodian) => BigEndian.ToInteger(Base64Url.Decode(custodian.VerificationValue!));
}
