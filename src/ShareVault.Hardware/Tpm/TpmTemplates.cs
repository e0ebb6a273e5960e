namespace ShareVault.Hardware.Tpm;

/// <summary>
/// TPMT_PUBLIC templates (TPM 2.0 Part 2 §12.2.4), each returned as a wire-format TPM2B_PUBLIC.
/// The attributes are the point: every key is born inside the TPM (sensitiveDataOrigin) and can
/// never leave it (fixedTPM, fixedParent), so TPM2_Duplicate refuses it.
/// </summary>
internal static class TpmTemplates
{
    /// <summary>
    /// The storage root under which ShareVault keeps its keys: an ECC P-256 restricted decrypt key
    /// with AES-128-CFB, as in the TCG "TPM 2.0 Provisioning Guidance" SRK template. TPM2_CreatePrimary
    /// derives it from the owner seed, so the same template gives the same key every time and it
    /// need not stay loaded. ECC, not RSA, so that re-creating it per call is cheap. noDA: its auth is empty.
    /// </summary>
    public static byte[] StoragePrimary() => TpmWriter.Sized(new TpmWriter()
        .U16(TpmConst.AlgEcc)
        .U16(TpmConst.AlgSha256)
        .U32(TpmConst.FixedTpm | TpmConst.FixedParent | TpmConst.SensitiveDataOrigin | TpmConst.UserWithAuth
            | TpmConst.NoDa | TpmConst.Restricted | TpmConst.Decrypt)
        .Tpm2b([])
        // TPMS_ECC_PARMS: symmetric (TPMT_SYM_DEF_OBJECT), scheme, curveID, kdf.
        .U16(TpmConst.AlgAes).U16(128).U16(TpmConst.AlgCfb)
        .U16(TpmConst.AlgNull)
        .U16(TpmConst.EccNistP256)
        .U16(TpmConst.AlgNull)
        // unique: TPMS_ECC_POINT with empty x and y.
        .Tpm2b([]).Tpm2b([]));

    /// <summary>
    /// A product-RSA custodian key: RSA decrypt key with the null scheme, so TPM2_RSA_Decrypt is the
    /// raw private operation (Part 3 §14.3; RSADP of RFC 8017 §5.1.2). Exponent 0 means 65537 (Part 2 §12.2.3.5).
    /// Dictionary-attack protection stays on: wrong auth values count towards lockout.
    /// </summary>
    public static byte[] RsaDecryptKey(int bits) => TpmWriter.Sized(new TpmWriter()
        .U16(TpmConst.AlgRsa)
        .U16(TpmConst.AlgSha256)
        .U32(TpmConst.FixedTpm | TpmConst.FixedParent | TpmConst.SensitiveDataOrigin | TpmConst.UserWithAuth | TpmConst.Decrypt)
        .Tpm2b([])
        // TPMS_RSA_PARMS: symmetric NULL, scheme NULL, keyBits, exponent.
        .U16(TpmConst.AlgNull)
        .U16(TpmConst.AlgNull)
        .U16(checked((ushort)bits))
        .U32(0)
        .Tpm2b([]));

    /// <summary>A device identity key: ECDSA P-256 with SHA-256, signing only (Part 2 §11.2.5).</summary>
    public static byte[] EcdsaP256SigningKey() => TpmWriter.Sized(new TpmWriter()
        .U16(TpmConst.AlgEcc)
        .U16(TpmConst.AlgSha256)
        .U32(TpmConst.FixedTpm | TpmConst.FixedParent | TpmConst.SensitiveDataOrigin | TpmConst.UserWithAuth | TpmConst.Sign)
        .Tpm2b([])
        .U16(TpmConst.AlgNull)
        .U16(TpmConst.AlgEcdsa).U16(TpmConst.AlgSha256)
        .U16(TpmConst.EccNistP256)
        .U16(TpmConst.AlgNull)
        .Tpm2b([]).Tpm2b([]));

    /// <summary>
    /// A sealed data object (KEYEDHASH, null scheme, Part 2 §12.2.3.3). userWithAuth is clear, so
    /// the only way to unseal is a policy session satisfying <paramref name="authPolicy"/>.
    /// </summary>
    public static byte[] SealedObject(ReadOnlySpan<byte> authPolicy) => TpmWriter.Sized(new TpmWriter()
        .U16(TpmConst.AlgKeyedHash)
        .U16(TpmConst.AlgSha256)
        .U32(TpmConst.FixedTpm | TpmConst.FixedParent | TpmConst.AdminWithPolicy)
        .Tpm2b(authPolicy)
        .U16(TpmConst.AlgNull)
        .Tpm2b([]));

    /// <summary>TPM2B_SENSITIVE_CREATE (Part 2 §11.1.15): the new object's auth value and, for sealing, its data.</summary>
    public static byte[] SensitiveCreate(ReadOnlySpan<byte> userAuth, ReadOnlySpan<byte> data) =>
        TpmWriter.Sized(new TpmWriter().Tpm2b(userAuth).Tpm2b(data));
}

/// <summary>The parts of a TPMT_PUBLIC ShareVault reads back (Part 2 §12.2.4).</summary>
internal sealed record TpmPublicArea(ushort Type, ushort NameAlg, uint Attributes, byte[] RsaModulus, uint RsaExponent, byte[] EccX, byte[] EccY)
{
    /// <summary>Parses a wire-format TPM2B_PUBLIC.</summary>
    public static TpmPublicArea Parse(ReadOnlySpan<byte> tpm2bPublic)
    {
        var outer = new TpmReader(tpm2bPublic);
        var reader = new TpmReader(outer.Tpm2b());
        var type = reader.U16();
        var nameAlg = reader.U16();
        var attributes = reader.U32();
        reader.Tpm2b(); // authPolicy
        switch (type)
        {
            case TpmConst.AlgRsa:
                {
                    SkipSymmetric(ref reader);
                    SkipScheme(ref reader);
                    reader.U16(); // keyBits
                    var exponent = reader.U32();
                    var modulus = reader.Tpm2b().ToArray();
                    return new TpmPublicArea(type, nameAlg, attributes, modulus, exponent == 0 ? 65537u : exponent, [], []);
                }

            case TpmConst.AlgEcc:
                {
                    SkipSymmetric(ref reader);
                    SkipScheme(ref reader);
                    reader.U16(); // curveID
                    SkipScheme(ref reader); // kdf
                    var x = reader.Tpm2b().ToArray();
                    var y = reader.Tpm2b().ToArray();
                    return new TpmPublicArea(type, nameAlg, attributes, [], 0, x, y);
                }

            default:
                return new TpmPublicArea(type, nameAlg, attributes, [], 0, [], []);
        }
    }

    public bool Has(uint attribute) => (Attributes & attribute) == attribute;

    private static void SkipSymmetric(ref TpmReader reader)
    {
        if (reader.U16() != TpmConst.AlgNull)
        {
            reader.U16(); // keyBits
            reader.U16(); // mode
        }
    }

    private static void SkipScheme(ref TpmReader reader)
    {
        if (reader.U16() != TpmConst.AlgNull)
        {
            reader.U16(); // hashAlg (ECDAA's count is not used by ShareVault templates)
        }
    }
}
