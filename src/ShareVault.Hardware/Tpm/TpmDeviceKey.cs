using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A device identity key: ECDSA P-256 generated inside the TPM (fixedTPM, fixedParent,
/// sensitiveDataOrigin, sign), signing inside it. Addressed like a custodian,
/// <c>tpm:object=NAME?tcti=…&amp;pin-source=file:…</c>; its blobs are <c>DATA_DIR/tpm/NAME/device-key.pub|.priv</c>.
/// The public key exports as PEM (SubjectPublicKeyInfo), JWK (RFC 7518 §6.2) and COSE_Key (RFC 9053 §7.1.1).
/// </summary>
public sealed class TpmDeviceKey : IDeviceSigningKey
{
    internal const string BlobLabel = "device-key";

    private readonly TpmConnection _tpm;
    private readonly byte[] _auth;
    private readonly byte[] _privateBlob;
    private readonly byte[] _publicBlob;
    private readonly TimeSpan _timeout;
    private bool _disposed;

    private TpmDeviceKey(TpmUri uri, TpmConnection tpm, byte[] auth, byte[] privateBlob, byte[] publicBlob)
    {
        Name = uri.ObjectName;
        _tpm = tpm;
        _auth = auth;
        _privateBlob = privateBlob;
        _publicBlob = publicBlob;
        _timeout = uri.CommandTimeout;
        var area = TpmPublicArea.Parse(publicBlob);
        if (area.Type != TpmConst.AlgEcc || area.EccX.Length > 32 || area.EccY.Length > 32)
        {
            throw new ShareStoreException(ShareStoreError.KeyNotFound, $"TPM object '{Name}' is not a P-256 device key");
        }

        PublicKey = new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = LeftPad(area.EccX), Y = LeftPad(area.EccY) },
        };
    }

    public string Name { get; }

    public ECParameters PublicKey { get; }

    /// <summary>Generates a new device key inside the TPM and stores its blobs; refuses to replace an existing one.</summary>
    public static TpmDeviceKey Create(string uri, string dataDir)
    {
        var parsed = TpmUri.Parse(uri);
        var blobs = new TpmKeyBlobs(dataDir, parsed.ObjectName);
        if (blobs.Exists(BlobLabel))
        {
            throw new ShareStoreException(ShareStoreError.KeyExists, $"Device key '{parsed.ObjectName}' already exists in {blobs.Folder}");
        }

        return WithConnection(parsed, (tpm, auth) =>
        {
            var sensitive = TpmTemplates.SensitiveCreate(auth, []);
            var (privateBlob, publicBlob) = tpm.Run("ECDSA P-256 key generation", device => device.WithPrimary((primary, session) =>
                device.Create(primary, session, sensitive, TpmTemplates.EcdsaP256SigningKey())), parsed.CommandTimeout * 3);
            blobs.Write(BlobLabel, privateBlob, publicBlob);
            return new TpmDeviceKey(parsed, tpm, auth, privateBlob, publicBlob);
        });
    }

    /// <summary>Opens an existing device key (its blobs from the data folder).</summary>
    public static TpmDeviceKey Open(string uri, string dataDir)
    {
        var parsed = TpmUri.Parse(uri);
        var blobs = new TpmKeyBlobs(dataDir, parsed.ObjectName);
        var (privateBlob, publicBlob) = blobs.TryRead(BlobLabel)
            ?? throw new ShareStoreException(ShareStoreError.KeyNotFound, $"No device key '{parsed.ObjectName}' in {blobs.Folder}");
        return WithConnection(parsed, (tpm, auth) => new TpmDeviceKey(parsed, tpm, auth, privateBlob, publicBlob));
    }

    /// <summary>Opens the device key, creating it on first use.</summary>
    public static TpmDeviceKey OpenOrCreate(string uri, string dataDir)
    {
        var parsed = TpmUri.Parse(uri);
        return new TpmKeyBlobs(dataDir, parsed.ObjectName).Exists(BlobLabel) ? Open(uri, dataDir) : Create(uri, dataDir);
    }

    public byte[] SignHash(ReadOnlySpan<byte> sha256)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (sha256.Length != 32)
        {
            throw new ArgumentException($"ES256 signs a 32-byte SHA-256 digest, not {sha256.Length} bytes", nameof(sha256));
        }

        var digest = sha256.ToArray();
        var (r, s) = _tpm.Run("TPM2_Sign", tpm => tpm.WithPrimary((primary, session) =>
        {
            var key = tpm.Load(primary, session, _privateBlob, _publicBlob);
            try
            {
                tpm.SetAuth(key, _auth);
                return tpm.SignEcdsaSha256(key, session, digest);
            }
            finally
            {
                tpm.Flush(key);
            }
        }), _timeout);

        // IEEE P1363 r‖s, each left-padded to the field size (RFC 9053 §2.1).
        var signature = new byte[64];
        LeftPad(r).CopyTo(signature, 0);
        LeftPad(s).CopyTo(signature, 32);
        return signature;
    }

    /// <summary>SubjectPublicKeyInfo PEM (RFC 5480), readable by <c>openssl pkey -pubin</c>.</summary>
    public string ToPem()
    {
        using var ecdsa = ECDsa.Create(PublicKey);
        return ecdsa.ExportSubjectPublicKeyInfoPem();
    }

    /// <summary>JWK (RFC 7517, RFC 7518 §6.2.1) with <c>alg=ES256</c>.</summary>
    public JsonObject ToJwk(string? kid = null)
    {
        var jwk = new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64Url.Encode(PublicKey.Q.X!),
            ["y"] = Base64Url.Encode(PublicKey.Q.Y!),
            ["use"] = "sig",
            ["alg"] = "ES256",
        };
        if (kid is not null)
        {
            jwk["kid"] = kid;
        }

        return jwk;
    }

    /// <summary>
    /// COSE_Key (RFC 9052 §7, RFC 9053 §7.1.1) in deterministic CBOR (RFC 8949 §4.2.1):
    /// {1 (kty): 2 (EC2), 3 (alg): -7 (ES256), -1 (crv): 1 (P-256), -2 (x): bstr, -3 (y): bstr}.
    /// </summary>
    public byte[] ToCoseKey()
    {
        var writer = new List<byte> { 0xA5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20 };
        writer.AddRange(PublicKey.Q.X!);
        writer.AddRange([0x22, 0x58, 0x20]);
        writer.AddRange(PublicKey.Q.Y!);
        return [.. writer];
    }

    /// <summary>The public area as the TPM wrote it (attributes included), for inspection and tests.</summary>
    internal TpmPublicArea PublicArea => TpmPublicArea.Parse(_publicBlob);

    private static TpmDeviceKey WithConnection(TpmUri uri, Func<TpmConnection, byte[], TpmDeviceKey> build)
    {
        var auth = TpmShareStore.ReadAuth(uri);
        TpmConnection? tpm = null;
        try
        {
            tpm = TpmConnection.Acquire(uri.Tcti, uri.CommandTimeout);
            return build(tpm, auth);
        }
        catch
        {
            tpm?.Dispose();
            CryptographicOperations.ZeroMemory(auth);
            throw;
        }
    }

    private static byte[] LeftPad(byte[] value)
    {
        if (value.Length == 32)
        {
            return value;
        }

        var padded = new byte[32];
        value.CopyTo(padded, 32 - value.Length);
        return padded;
    }

    public override string ToString() => $"TPM device key '{Name}' (ECDSA P-256)";

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _tpm.Dispose();
        CryptographicOperations.ZeroMemory(_auth);
    }
}
