using System.Security.Cryptography;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace ShareVault.Hardware.Pkcs11;

/// <summary>
/// A device's ECDSA P-256 evidence key inside a PKCS#11 token. Generated in the token
/// (CKM_EC_KEY_PAIR_GEN, PKCS#11 v2.40 Mechanisms §2.3.5) as a private, sensitive,
/// non-extractable token object; signs SHA-256 digests with CKM_ECDSA (§2.3.6), whose output is
/// r‖s — exactly the ES256 signature format (RFC 9053 §2.1). Uses the share store's session pool.
/// </summary>
public sealed class Pkcs11DeviceKey : IDeviceSigningKey
{
    // DER of the OID 1.2.840.10045.3.1.7 (prime256v1 / P-256), the CKA_EC_PARAMS value (§2.3.3).
    private static readonly byte[] P256Params = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

    private readonly Pkcs11ShareStore _store;
    private readonly bool _ownsStore;
    private IObjectHandle? _privateKey;

    private Pkcs11DeviceKey(Pkcs11ShareStore store, bool ownsStore, string label, ECParameters publicKey)
    {
        _store = store;
        _ownsStore = ownsStore;
        Name = label;
        PublicKey = publicKey;
    }

    public string Name { get; }

    public ECParameters PublicKey { get; }

    /// <summary>
    /// Opens the key the URI names (<c>pkcs11:token=T;object=LABEL?module-path=…&amp;pin-source=…</c>);
    /// with <paramref name="create"/>, generates it first when the token does not hold it.
    /// </summary>
    public static Pkcs11DeviceKey Open(string uri, bool create = false)
    {
        var parsed = Pkcs11Uri.Parse(uri);
        var label = parsed.ObjectLabel
            ?? throw new ShareStoreException(ShareStoreError.BadUri, "A device key URI must name its object (object=LABEL)");
        var store = Pkcs11ShareStore.Open(parsed);
        try
        {
            return Exists(store, label) || !create ? Open(store, label, ownsStore: true) : Generate(store, label, ownsStore: true);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Generates a new key pair labelled <paramref name="label"/> inside the token.</summary>
    public static Pkcs11DeviceKey Generate(Pkcs11ShareStore store, string label, bool ownsStore = false)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(label);
        store.RequireMechanism(CKM.CKM_EC_KEY_PAIR_GEN);
        store.RequireMechanism(CKM.CKM_ECDSA);
        var publicKey = store.WithSession(session =>
        {
            if (store.FindObject(session, CKO.CKO_PRIVATE_KEY, label, CKK.CKK_EC) is not null)
            {
                throw new ShareStoreException(ShareStoreError.KeyExists, $"Token '{store.CustodianName}' already holds a key labelled '{label}'");
            }

            var f = store.Module.Factories.ObjectAttributeFactory;
            var id = Encoding.UTF8.GetBytes(label);
            var publicTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true),
                f.Create(CKA.CKA_PRIVATE, false),
                f.Create(CKA.CKA_LABEL, label),
                f.Create(CKA.CKA_ID, id),
                f.Create(CKA.CKA_EC_PARAMS, P256Params),
                f.Create(CKA.CKA_VERIFY, true),
            };
            // CKA_PRIVATE true: SoftHSM stores non-private objects in clear in its token file.
            var privateTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true),
                f.Create(CKA.CKA_PRIVATE, true),
                f.Create(CKA.CKA_SENSITIVE, true),
                f.Create(CKA.CKA_EXTRACTABLE, false),
                f.Create(CKA.CKA_LABEL, label),
                f.Create(CKA.CKA_ID, id),
                f.Create(CKA.CKA_SIGN, true),
            };
            var mechanism = store.Module.Factories.MechanismFactory.Create(CKM.CKM_EC_KEY_PAIR_GEN);
            try
            {
                session.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out var publicHandle, out _);
                return ReadPublic(session, publicHandle);
            }
            finally
            {
                // Pkcs11Interop may let the GC free templates while the module reads them (seen under load; docs/architecture.md, "Hardware facts").
                GC.KeepAlive(publicTemplate);
                GC.KeepAlive(privateTemplate);
                mechanism.Dispose();
                Pkcs11ShareStore.DisposeAll(publicTemplate);
                Pkcs11ShareStore.DisposeAll(privateTemplate);
            }
        });
        return new Pkcs11DeviceKey(store, ownsStore, label, publicKey);
    }

    /// <summary>Opens an existing key pair labelled <paramref name="label"/>.</summary>
    public static Pkcs11DeviceKey Open(Pkcs11ShareStore store, string label, bool ownsStore = false)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentException.ThrowIfNullOrEmpty(label);
        var publicKey = store.WithSession(session =>
        {
            var handle = store.FindObject(session, CKO.CKO_PUBLIC_KEY, label, CKK.CKK_EC) ?? throw store.KeyNotFound(label);
            return ReadPublic(session, handle);
        });
        return new Pkcs11DeviceKey(store, ownsStore, label, publicKey);
    }

    public byte[] SignHash(ReadOnlySpan<byte> sha256)
    {
        if (sha256.Length != 32)
        {
            throw new ArgumentException("ES256 signs a 32-byte SHA-256 digest", nameof(sha256));
        }

        var digest = sha256.ToArray();
        return _store.WithSession(session =>
        {
            _privateKey ??= _store.FindObject(session, CKO.CKO_PRIVATE_KEY, Name, CKK.CKK_EC) ?? throw _store.KeyNotFound(Name);
            var mechanism = _store.Module.Factories.MechanismFactory.Create(CKM.CKM_ECDSA);
            try
            {
                var signature = session.Sign(mechanism, _privateKey, digest);
                return signature.Length == 64
                    ? signature
                    : throw new ShareStoreException(ShareStoreError.DeviceError, $"Token '{_store.CustodianName}' returned a {signature.Length}-byte ECDSA signature, expected r||s of 64");
            }
            finally
            {
                mechanism.Dispose();
            }
        });
    }

    /// <summary>
    /// Reads the private key's protection attributes from the token (PKCS#11 v2.40 §4.9), so an
    /// enrolment can show the key is sensitive and was never extractable.
    /// </summary>
    public DeviceKeyProtection ReadProtection() => _store.WithSession(session =>
    {
        var handle = _store.FindObject(session, CKO.CKO_PRIVATE_KEY, Name, CKK.CKK_EC) ?? throw _store.KeyNotFound(Name);
        var attrs = session.GetAttributeValue(handle,
            [CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_SENSITIVE, CKA.CKA_ALWAYS_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_NEVER_EXTRACTABLE]);
        return new DeviceKeyProtection(
            attrs[0].GetValueAsBool(), attrs[1].GetValueAsBool(), attrs[2].GetValueAsBool(),
            attrs[3].GetValueAsBool(), attrs[4].GetValueAsBool(), attrs[5].GetValueAsBool());
    });

    private static bool Exists(Pkcs11ShareStore store, string label) =>
        store.WithSession(session => store.FindObject(session, CKO.CKO_PRIVATE_KEY, label, CKK.CKK_EC) is not null);

    private static ECParameters ReadPublic(ISession session, IObjectHandle publicKey)
    {
        var attrs = session.GetAttributeValue(publicKey, [CKA.CKA_EC_PARAMS, CKA.CKA_EC_POINT]);
        if (!attrs[0].GetValueAsByteArray().AsSpan().SequenceEqual(P256Params))
        {
            throw new ShareStoreException(ShareStoreError.MechanismNotSupported, "The device key is not on curve P-256");
        }

        // CKA_EC_POINT is the DER OCTET STRING of the SEC1 uncompressed point (§2.3.3); some tokens
        // return the bare point instead. Accept both.
        var point = attrs[1].GetValueAsByteArray();
        if (point.Length == 67 && point[0] == 0x04 && point[1] == 65)
        {
            point = point[2..];
        }

        if (point.Length != 65 || point[0] != 0x04)
        {
            throw new ShareStoreException(ShareStoreError.DeviceError, $"Unexpected CKA_EC_POINT encoding ({point.Length} bytes)");
        }

        return new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = point[1..33], Y = point[33..] },
        };
    }

    public void Dispose()
    {
        if (_ownsStore)
        {
            _store.Dispose();
        }
    }
}

/// <summary>Protection attributes of a device's private key in its token.</summary>
public sealed record DeviceKeyProtection(bool Token, bool Private, bool Sensitive, bool AlwaysSensitive, bool Extractable, bool NeverExtractable);
