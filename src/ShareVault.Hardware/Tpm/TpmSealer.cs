using System.Security.Cryptography;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A secret sealed to one TPM: the sealed object's blobs and the PCRs its policy binds. Holds no
/// secret in clear (the TPM2B_PRIVATE is encrypted under the TPM's storage primary); safe to store on disk.
/// </summary>
public sealed class SealedSecret
{
    private const uint Magic = 0x53565331; // "SVS1"

    internal SealedSecret(byte[] publicBlob, byte[] privateBlob, IReadOnlyList<int> pcrs)
    {
        PublicBlob = publicBlob;
        PrivateBlob = privateBlob;
        Pcrs = pcrs;
    }

    internal byte[] PublicBlob { get; }

    internal byte[] PrivateBlob { get; }

    /// <summary>The SHA-256 PCRs whose values at sealing time the policy requires (empty: auth value only).</summary>
    public IReadOnlyList<int> Pcrs { get; }

    public byte[] ToBytes()
    {
        var writer = new TpmWriter().U32(Magic).U8((byte)Pcrs.Count);
        foreach (var pcr in Pcrs)
        {
            writer.U8((byte)pcr);
        }

        return writer.Tpm2b(PublicBlob).Tpm2b(PrivateBlob).ToArray();
    }

    /// <summary>Reads a stored sealed secret; damaged input gives <see cref="FormatException"/>.</summary>
    public static SealedSecret FromBytes(ReadOnlySpan<byte> bytes)
    {
        var reader = new TpmReader(bytes);
        if (reader.U32() != Magic)
        {
            throw new FormatException("Not a ShareVault sealed secret");
        }

        var count = reader.U8();
        var pcrs = new int[count];
        for (var i = 0; i < count; i++)
        {
            pcrs[i] = reader.U8();
        }

        var pub = reader.Tpm2b().ToArray();
        var priv = reader.Tpm2b().ToArray();
        if (reader.Remaining != 0)
        {
            throw new FormatException("Trailing bytes after a sealed secret");
        }

        return new SealedSecret(pub, priv, pcrs);
    }

    public override string ToString() => $"sealed secret (PCRs: {(Pcrs.Count == 0 ? "none" : string.Join(',', Pcrs))})";
}

/// <summary>
/// Seals small secrets (≤ 128 bytes, e.g. an MQTT client key password) to a TPM under the policy
/// PolicyPCR (optional) + PolicyAuthValue (TPM 2.0 Part 1 §19.7, Part 3 §23.7 and §23.17): unsealing
/// needs this TPM, the auth value, and the selected PCRs unchanged since sealing.
/// Secrets, auth values and unsealed data cross the bus only inside salted, AES-CFB encrypted sessions.
/// </summary>
public sealed class TpmSealer : IDisposable
{
    private readonly TpmConnection _tpm;
    private bool _disposed;

    private TpmSealer(TpmConnection tpm)
    {
        _tpm = tpm;
    }

    public string Tcti => _tpm.Tcti;

    /// <summary>Connects to the TPM at <paramref name="tcti"/> (e.g. <c>device:/dev/tpmrm0</c>).</summary>
    public static TpmSealer Open(string tcti, TimeSpan? commandTimeout = null) =>
        new(TpmConnection.Acquire(tcti, commandTimeout ?? TpmUri.DefaultCommandTimeout));

    /// <summary>Seals <paramref name="secret"/>; <paramref name="pcrs"/> (SHA-256 bank, 0–23) bind it to their current values.</summary>
    public SealedSecret Seal(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> authValue, IReadOnlyList<int>? pcrs = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (secret.Length is 0 or > TpmConst.MaxSealedBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(secret), secret.Length, $"A sealed secret holds 1 to {TpmConst.MaxSealedBytes} bytes");
        }

        ValidateAuth(authValue);
        var selected = NormalisePcrs(pcrs);
        var sensitive = TpmTemplates.SensitiveCreate(authValue, secret);
        var (privateBlob, publicBlob) = _tpm.Run("seal", tpm => tpm.WithPrimary((primary, session) =>
        {
            // The policy digest comes from a trial session (Part 1 §19.7.9): the TPM computes it over the PCRs' current values.
            var trial = tpm.StartSession(TssNative.TrNone, TpmConst.SessionTrial);
            byte[] policy;
            try
            {
                if (selected.Length > 0)
                {
                    tpm.PolicyPcr(trial, PcrSelection(selected));
                }

                tpm.PolicyAuthValue(trial);
                policy = tpm.PolicyGetDigest(trial);
            }
            finally
            {
                tpm.Flush(trial);
            }

            return tpm.Create(primary, session, sensitive, TpmTemplates.SealedObject(policy));
        }));
        return new SealedSecret(publicBlob, privateBlob, selected);
    }

    /// <summary>
    /// Unseals. A changed PCR gives <see cref="ShareStoreError.PolicyFailed"/> (0x99D); a wrong auth
    /// value gives <see cref="ShareStoreError.WrongPin"/> and counts towards the TPM's lockout.
    /// The caller wipes the returned bytes.
    /// </summary>
    public byte[] Unseal(SealedSecret sealedSecret, ReadOnlySpan<byte> authValue)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(sealedSecret);
        ValidateAuth(authValue);
        var auth = authValue.ToArray();
        try
        {
            return _tpm.Run("unseal", tpm => tpm.WithPrimary((primary, session) =>
            {
                var item = tpm.Load(primary, session, sealedSecret.PrivateBlob, sealedSecret.PublicBlob);
                var policy = TssNative.TrNone;
                try
                {
                    policy = tpm.StartSession(primary, TpmConst.SessionPolicy);
                    if (sealedSecret.Pcrs.Count > 0)
                    {
                        tpm.PolicyPcr(policy, PcrSelection(sealedSecret.Pcrs));
                    }

                    tpm.PolicyAuthValue(policy);
                    tpm.SetAuth(item, auth);
                    return tpm.Unseal(item, policy);
                }
                finally
                {
                    tpm.Flush(policy);
                    tpm.Flush(item);
                }
            }));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(auth);
        }
    }

    /// <summary>TPM2_PCR_Extend of a SHA-256 PCR (a device measuring what it runs; tests changing a PCR).</summary>
    public void ExtendPcr(int pcr, ReadOnlySpan<byte> sha256)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(pcr);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pcr, 23);
        if (sha256.Length != 32)
        {
            throw new ArgumentException("A SHA-256 PCR is extended with a 32-byte digest", nameof(sha256));
        }

        var digest = sha256.ToArray();
        _tpm.Run("TPM2_PCR_Extend", tpm =>
        {
            tpm.PcrExtend(pcr, digest);
            return 0;
        });
    }

    /// <summary>TPML_PCR_SELECTION (Part 2 §10.9.7) for the SHA-256 bank: one bit per PCR in a 3-byte map.</summary>
    internal static byte[] PcrSelection(IReadOnlyList<int> pcrs)
    {
        var map = new byte[3];
        foreach (var pcr in pcrs)
        {
            map[pcr / 8] |= (byte)(1 << (pcr % 8));
        }

        return new TpmWriter().U32(1).U16(TpmConst.AlgSha256).U8(3).Bytes(map).ToArray();
    }

    private static int[] NormalisePcrs(IReadOnlyList<int>? pcrs)
    {
        if (pcrs is null)
        {
            return [];
        }

        foreach (var pcr in pcrs)
        {
            if (pcr is < 0 or > 23)
            {
                throw new ArgumentOutOfRangeException(nameof(pcrs), pcr, "PCR indexes are 0 to 23");
            }
        }

        return [.. pcrs.Distinct().Order()];
    }

    private static void ValidateAuth(ReadOnlySpan<byte> authValue)
    {
        if (authValue.Length > TpmShareStore.MaxAuthBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(authValue), $"An auth value holds at most {TpmShareStore.MaxAuthBytes} bytes");
        }

        if (authValue.Length > 0 && authValue[^1] == 0)
        {
            // The TPM strips trailing zeros from auth values (Part 1 §19.6.4); refuse them rather than surprise.
            throw new ArgumentException("An auth value must not end with a zero byte", nameof(authValue));
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _tpm.Dispose();
    }
}
