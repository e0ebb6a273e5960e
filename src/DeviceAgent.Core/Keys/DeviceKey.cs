using System.Security.Cryptography;
using System.Text.Json;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;
using ShareVault.Hardware.Tpm;

namespace DeviceAgent.Keys;

/// <summary>
/// The device's evidence signing key, opened from a key URI:
/// <list type="bullet">
/// <item><c>pkcs11:token=T;object=LABEL?module-path=…&amp;pin-source=file:PATH</c> — P-256 key inside a PKCS#11 token.</item>
/// <item><c>tpm:object=NAME?tcti=…</c> — P-256 key inside the TPM (needs the TPM store).</item>
/// <item><c>file:PATH</c> — a PKCS#8 PEM software key, only when software keys are explicitly allowed.</item>
/// </list>
/// <see cref="Signer"/> is an <see cref="ECDsa"/> that COSE signing can use; for hardware keys it
/// signs inside the hardware.
/// </summary>
public sealed class DeviceKey : IDisposable
{
    private readonly IDeviceSigningKey? _hardware;

    private DeviceKey(string uri, ECDsa signer, IDeviceSigningKey? hardware)
    {
        Uri = uri;
        Signer = signer;
        _hardware = hardware;
    }

    public string Uri { get; }

    public ECDsa Signer { get; }

    public bool IsHardware => _hardware is not null;

    /// <summary>The hardware key behind <see cref="Signer"/>, or null for a software key.</summary>
    public IDeviceSigningKey? Hardware => _hardware;

    /// <summary>Opens an existing key.</summary>
    /// <param name="dataDir">Where TPM key blobs live (useless outside that TPM); default <see cref="DefaultDataDir"/>.</param>
    public static DeviceKey Open(string uri, bool allowSoftwareKey, string? dataDir = null) => OpenOrCreate(uri, allowSoftwareKey, create: false, dataDir);

    /// <summary>Creates a key (inside the hardware for pkcs11:/tpm:); refuses to overwrite an existing one.</summary>
    public static DeviceKey Create(string uri, bool allowSoftwareKey, string? dataDir = null) => OpenOrCreate(uri, allowSoftwareKey, create: true, dataDir);

    /// <summary>The agent's data folder when none is given: <c>$SHAREVAULT_AGENT_DATA</c>, else <c>./.device-agent</c>.</summary>
    public static string DefaultDataDir => Environment.GetEnvironmentVariable("SHAREVAULT_AGENT_DATA") ?? Path.GetFullPath(".device-agent");

    private static DeviceKey OpenOrCreate(string uri, bool allowSoftwareKey, bool create, string? dataDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (Pkcs11Uri.IsPkcs11(uri))
        {
            IDeviceSigningKey key;
            if (create)
            {
                var parsed = Pkcs11Uri.Parse(uri);
                var label = parsed.ObjectLabel ?? throw new ShareStoreException(ShareStoreError.BadUri, "A device key URI must name its object (object=LABEL)");
                var store = Pkcs11ShareStore.Open(parsed);
                try
                {
                    key = Pkcs11DeviceKey.Generate(store, label, ownsStore: true);
                }
                catch
                {
                    store.Dispose();
                    throw;
                }
            }
            else
            {
                key = Pkcs11DeviceKey.Open(uri);
            }

            return new DeviceKey(uri, new HardwareECDsa(key), key);
        }

        if (uri.StartsWith("tpm:", StringComparison.OrdinalIgnoreCase))
        {
            var blobs = dataDir ?? DefaultDataDir;
            IDeviceSigningKey key = create ? TpmDeviceKey.Create(uri, blobs) : TpmDeviceKey.Open(uri, blobs);
            return new DeviceKey(uri, new HardwareECDsa(key), key);
        }

        if (uri.StartsWith("file:", StringComparison.OrdinalIgnoreCase))
        {
            if (!allowSoftwareKey)
            {
                throw new InvalidOperationException(
                    "Software device keys are refused unless explicitly allowed (config \"allowSoftwareKey\": true or --allow-software-key); use a pkcs11: or tpm: key");
            }

            var path = uri["file:".Length..];
            return new DeviceKey(uri, create ? CreateSoftwareKey(path) : OpenSoftwareKey(path), null);
        }

        throw new ArgumentException("A device key URI starts with 'pkcs11:', 'tpm:' or 'file:'", nameof(uri));
    }

    /// <summary>
    /// THE single point where a <c>tpm:</c> device key is opened. INTEGRATION POINT: when the TPM
    /// store (branch <c>tpm</c>, TpmDeviceKey) is merged, return its key here.
    /// </summary>
    private static ECDsa OpenSoftwareKey(string path)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(File.ReadAllText(path));
        }
        catch (ArgumentException)
        {
            key.Dispose();
            throw new InvalidDataException($"{path} holds no PEM private key");
        }

        if (key.KeySize != 256)
        {
            key.Dispose();
            throw new InvalidDataException($"{path} is not a P-256 key (ES256 needs P-256)");
        }

        return key;
    }

    private static ECDsa CreateSoftwareKey(string path)
    {
        if (File.Exists(path))
        {
            throw new IOException($"{path} already exists; refusing to replace a device key");
        }

        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var der = key.ExportPkcs8PrivateKey();
        var pem = PemEncoding.Write("PRIVATE KEY", der);
        try
        {
            // Owner read/write only, set at creation so the key is never world-readable.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using var stream = new FileStream(path, options);
            using var writer = new StreamWriter(stream);
            writer.Write(pem);
            writer.Write('\n');
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(der);
            Array.Clear(pem);
        }

        return key;
    }

    /// <summary>SubjectPublicKeyInfo PEM (RFC 7468 §13).</summary>
    public string PublicPem() => Signer.ExportSubjectPublicKeyInfoPem() + "\n";

    /// <summary>Public JWK (RFC 7517, RFC 7518 §6.2.1) with <c>kid</c> = device id when given.</summary>
    public string PublicJwk(string? deviceId)
    {
        var q = Signer.ExportParameters(false).Q;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("kty", "EC");
            json.WriteString("crv", "P-256");
            json.WriteString("x", Base64Url.Encode(q.X!));
            json.WriteString("y", Base64Url.Encode(q.Y!));
            json.WriteString("alg", "ES256");
            json.WriteString("use", "sig");
            if (deviceId is not null)
            {
                json.WriteString("kid", deviceId);
            }

            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    public void Dispose()
    {
        Signer.Dispose();
        _hardware?.Dispose();
    }
}
