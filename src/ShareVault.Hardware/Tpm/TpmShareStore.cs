using System.Security.Cryptography;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A product-RSA custodian on a TPM 2.0. Each key is an RSA decrypt key with the null scheme born
/// inside the TPM (TPM2_Create, fixedTPM | fixedParent | sensitiveDataOrigin) under a storage
/// primary re-created from a fixed template; its blobs sit in the data folder and are useless
/// elsewhere. Every call loads, uses and flushes, so the TPM holds nothing between calls. The
/// auth value comes from the URI's pin-source and only ever travels inside salted, encrypted sessions.
/// </summary>
public sealed class TpmShareStore : IShareStore
{
    internal const string RsaKeyKind = "rsa-private-key";

    /// <summary>The TPM spec limits an auth value to the digest size of the object's nameAlg (SHA-256: 32 bytes, Part 1 §19.6.4).</summary>
    internal const int MaxAuthBytes = 32;

    /// <summary>RSA key generation inside a TPM is slow (seconds on swtpm, up to a minute on discrete chips).</summary>
    private static readonly TimeSpan KeyGenerationTimeout = TimeSpan.FromSeconds(120);

    private readonly TpmConnection _tpm;
    private readonly TpmKeyBlobs _blobs;
    private readonly byte[] _auth;
    private readonly TimeSpan _timeout;
    private readonly CallsInFlight _calls;

    private TpmShareStore(TpmUri uri, TpmConnection tpm, string dataDir, byte[] auth)
    {
        CustodianName = uri.ObjectName;
        _tpm = tpm;
        _blobs = new TpmKeyBlobs(dataDir, uri.ObjectName);
        _auth = auth;
        _timeout = uri.CommandTimeout;
        _calls = new CallsInFlight(uri.ObjectName, Release);
    }

    public string CustodianName { get; }

    /// <summary>The TCTI string (where the TPM is; no secret).</summary>
    public string Tcti => _tpm.Tcti;

    /// <summary>Opens the custodian: reads its auth value and connects to the TPM.</summary>
    public static TpmShareStore Open(TpmUri uri, string dataDir)
    {
        ArgumentNullException.ThrowIfNull(uri);
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        var auth = ReadAuth(uri);
        try
        {
            return new TpmShareStore(uri, TpmConnection.Acquire(uri.Tcti, uri.CommandTimeout), dataDir, auth);
        }
        catch
        {
            CryptographicOperations.ZeroMemory(auth);
            throw;
        }
    }

    public static TpmShareStore Open(string uri, string dataDir) => Open(TpmUri.Parse(uri), dataDir);

    internal static byte[] ReadAuth(TpmUri uri)
    {
        var auth = PinSource.Read(uri.PinSource, uri.ObjectName);
        if (auth.Length > MaxAuthBytes)
        {
            CryptographicOperations.ZeroMemory(auth);
            throw new ShareStoreException(ShareStoreError.PinUnavailable,
                $"The auth value of TPM object '{uri.ObjectName}' is longer than {MaxAuthBytes} bytes, the TPM's limit for SHA-256 objects");
        }

        return auth;
    }

    public RsaPublicKey GenerateRsaKey(string objectLabel, int bits) => _calls.Run(() => GenerateRsaKeyCore(objectLabel, bits));

    public RsaPublicKey GetRsaPublicKey(string objectLabel) => _calls.Run(() => GetRsaPublicKeyCore(objectLabel));

    public byte[] RsaRawPrivate(string objectLabel, ReadOnlySpan<byte> input)
    {
        var data = input.ToArray();
        return _calls.Run(() => RsaRawPrivateCore(objectLabel, data));
    }

    public void DeleteKey(string objectLabel) => _calls.Run(() =>
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        // Nothing of the key persists inside the TPM: without its blobs it is gone.
        _blobs.Delete(objectLabel);
        return 0;
    });

    public IReadOnlyList<StoredObject> ListObjects() => _calls.Run(ListObjectsCore);

    /// <summary>Calls in flight now (tests).</summary>
    internal int CallsInFlight => _calls.Count;

    private RsaPublicKey GenerateRsaKeyCore(string objectLabel, int bits)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        if (bits is not (2048 or 3072))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "TPM RSA keys are 2048 or 3072 bits");
        }

        TpmUri.ValidateName(objectLabel, "key label");
        if (_blobs.Exists(objectLabel))
        {
            throw new ShareStoreException(ShareStoreError.KeyExists, $"TPM custodian '{CustodianName}' already holds a key labelled '{objectLabel}'");
        }

        var (privateBlob, publicBlob) = _tpm.Run($"RSA-{bits} key generation", tpm => tpm.WithPrimary((primary, session) =>
            tpm.Create(primary, session, TpmTemplates.SensitiveCreate(_auth, []), TpmTemplates.RsaDecryptKey(bits))), KeyGenerationTimeout);
        _blobs.Write(objectLabel, privateBlob, publicBlob);
        return ToRsaPublic(publicBlob, objectLabel);
    }

    private RsaPublicKey GetRsaPublicKeyCore(string objectLabel)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        var publicBlob = _blobs.TryReadPublic(objectLabel) ?? throw KeyNotFound(objectLabel);
        return ToRsaPublic(publicBlob, objectLabel);
    }

    private byte[] RsaRawPrivateCore(string objectLabel, byte[] input)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        var (privateBlob, publicBlob) = _blobs.TryRead(objectLabel) ?? throw KeyNotFound(objectLabel);
        var publicKey = ToRsaPublic(publicBlob, objectLabel);
        if (input.Length != publicKey.ByteLength)
        {
            throw new ArgumentException($"Input must be exactly the modulus length ({publicKey.ByteLength} bytes), not {input.Length}", nameof(input));
        }

        var data = input;
        var result = _tpm.Run("TPM2_RSA_Decrypt", tpm => tpm.WithPrimary((primary, session) =>
        {
            var key = tpm.Load(primary, session, privateBlob, publicBlob);
            try
            {
                tpm.SetAuth(key, _auth);
                return tpm.RsaDecrypt(key, session, data);
            }
            finally
            {
                tpm.Flush(key);
            }
        }), _timeout);

        // The TPM may drop leading zero bytes; the seam promises exactly the modulus length.
        return result.Length == publicKey.ByteLength ? result : BigEndian.ToBytes(BigEndian.ToInteger(result), publicKey.ByteLength);
    }

    private IReadOnlyList<StoredObject> ListObjectsCore()
    {
        var result = new List<StoredObject>();
        foreach (var label in _blobs.Labels())
        {
            var area = TpmPublicArea.Parse(_blobs.TryReadPublic(label) ?? []);
            var kind = area.Type switch
            {
                TpmConst.AlgRsa => RsaKeyKind,
                TpmConst.AlgEcc => "ec-private-key",
                TpmConst.AlgKeyedHash => "sealed-data",
                _ => $"tpm-object-0x{area.Type:X4}",
            };
            result.Add(new StoredObject(label, kind));
        }

        return result;
    }

    /// <summary>The public area of a key as the TPM wrote it (attributes included), for inspection and tests.</summary>
    internal TpmPublicArea ReadPublicArea(string objectLabel) =>
        TpmPublicArea.Parse(_blobs.TryReadPublic(objectLabel) ?? throw KeyNotFound(objectLabel));

    internal TpmConnection Connection => _tpm;

    private RsaPublicKey ToRsaPublic(byte[] publicBlob, string label)
    {
        TpmPublicArea area;
        try
        {
            area = TpmPublicArea.Parse(publicBlob);
        }
        catch (FormatException e)
        {
            throw new ShareStoreException(ShareStoreError.DeviceError, $"TPM custodian '{CustodianName}': the public blob of '{label}' is damaged", inner: e);
        }

        if (area.Type != TpmConst.AlgRsa)
        {
            throw new ShareStoreException(ShareStoreError.KeyNotFound, $"TPM custodian '{CustodianName}': '{label}' is not an RSA key");
        }

        return RsaPublicKey.FromBytes(area.RsaModulus, new TpmWriter().U32(area.RsaExponent).ToArray());
    }

    private ShareStoreException KeyNotFound(string label) =>
        new(ShareStoreError.KeyNotFound, $"TPM custodian '{CustodianName}' holds no key labelled '{label}'");

    /// <summary>
    /// Refuses new calls; the TPM connection is released and the auth value wiped once no call is in
    /// flight (a call blocked in the TCTI still reads the auth value when the TPM answers).
    /// </summary>
    public void Dispose() => _calls.Close();

    private void Release()
    {
        _tpm.Dispose();
        CryptographicOperations.ZeroMemory(_auth);
    }
}
