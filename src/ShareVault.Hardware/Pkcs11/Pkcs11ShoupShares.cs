using System.Collections.Concurrent;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace ShareVault.Hardware.Pkcs11;

/// <summary>
/// Shoup threshold-RSA shares on a PKCS#11 token. A share sᵢ is a <c>CKK_DH</c> private key with
/// <c>CKA_PRIME = N</c>, <c>CKA_VALUE = sᵢ</c> (token, private, sensitive, non-extractable); the partial
/// z^sᵢ mod N is <c>C_DeriveKey(CKM_DH_PKCS_DERIVE)</c> with public value z (PKCS#11 v2.40 current
/// mechanisms §2.5.3) into a session-only generic secret whose value is read and destroyed.
/// An RSA key with eᵢ = sᵢ⁻¹ would also compute it but lets one share factor N: never used.
/// </summary>
public sealed partial class Pkcs11ShareStore : IShoupShareStore
{
    internal const string ShoupShareKind = "shoup-share";

    private const int TransportKeyBits = 2048;

    private readonly ConcurrentDictionary<string, (IObjectHandle Handle, int PrimeLength)> _shares = new(StringComparer.Ordinal);

    public void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, bool persistent)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        ArgumentNullException.ThrowIfNull(wrap);
        RequireMechanism(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN);
        RequireMechanism(CKM.CKM_RSA_PKCS_OAEP);
        RequireMechanism(CKM.CKM_AES_KEY_WRAP_PAD);
        RequireMechanism(CKM.CKM_DH_PKCS_DERIVE);
        WithSession(session =>
        {
            if (persistent && FindObjects(session, CKO.CKO_PRIVATE_KEY, objectLabel).Count > 0)
            {
                throw new ShareStoreException(ShareStoreError.KeyExists,
                    $"Token '{CustodianName}' already holds a key labelled '{objectLabel}'");
            }

            IObjectHandle? transportPublic = null;
            IObjectHandle? transportPrivate = null;
            IObjectHandle? kek = null;
            try
            {
                (transportPublic, transportPrivate) = GenerateTransportKey(session, objectLabel);
                var wrapped = wrap(ReadPublic(session, transportPublic));
                kek = UnwrapKek(session, transportPrivate, wrapped.WrappedKek, objectLabel);
                var share = UnwrapShare(session, kek, wrapped.WrappedKey, objectLabel, persistent);
                _shares[objectLabel] = (share, PrimeLength(session, share));
            }
            finally
            {
                foreach (var handle in new[] { kek, transportPrivate, transportPublic })
                {
                    if (handle is not null)
                    {
                        session.DestroyObject(handle);
                    }
                }
            }

            return 0;
        });
    }

    public byte[] ShoupPartial(string objectLabel, ReadOnlySpan<byte> z)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        var publicValue = z.ToArray();
        return WithSession(session =>
        {
            try
            {
                return Derive(session, ShareHandle(session, objectLabel), publicValue);
            }
            catch (Pkcs11Exception e) when (e.RV is CKR.CKR_OBJECT_HANDLE_INVALID or CKR.CKR_KEY_HANDLE_INVALID)
            {
                // The share was deleted or replaced since its handle was cached: look it up once more.
                _shares.TryRemove(objectLabel, out _);
                return Derive(session, ShareHandle(session, objectLabel), publicValue);
            }
        });
    }

    private (IObjectHandle Handle, int PrimeLength) ShareHandle(ISession session, string label)
    {
        if (_shares.TryGetValue(label, out var cached))
        {
            return cached;
        }

        var handle = FindObject(session, CKO.CKO_PRIVATE_KEY, label, CKK.CKK_DH) ?? throw KeyNotFound(label);
        var entry = (handle, PrimeLength(session, handle));
        _shares[label] = entry;
        return entry;
    }

    private static int PrimeLength(ISession session, IObjectHandle share)
    {
        var prime = session.GetAttributeValue(share, [CKA.CKA_PRIME]);
        try
        {
            return prime[0].GetValueAsByteArray().AsSpan().TrimStart((byte)0).Length;
        }
        finally
        {
            DisposeAll(prime);
        }
    }

    private byte[] Derive(ISession session, (IObjectHandle Handle, int PrimeLength) share, byte[] publicValue)
    {
        var f = _module.Factories.ObjectAttributeFactory;
        // The derived secret is the partial, which is public: a session object, readable, destroyed at once.
        var template = new List<IObjectAttribute>
        {
            f.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
            f.Create(CKA.CKA_KEY_TYPE, CKK.CKK_GENERIC_SECRET),
            f.Create(CKA.CKA_TOKEN, false),
            f.Create(CKA.CKA_PRIVATE, true),
            f.Create(CKA.CKA_SENSITIVE, false),
            f.Create(CKA.CKA_EXTRACTABLE, true),
            // The whole shared value, |N| bytes: SoftHSM left-pads it to the prime's length.
            f.Create(CKA.CKA_VALUE_LEN, (ulong)share.PrimeLength),
        };
        var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_DH_PKCS_DERIVE, publicValue);
        IObjectHandle? derived = null;
        try
        {
            derived = session.DeriveKey(mechanism, share.Handle, template);
            var value = session.GetAttributeValue(derived, [CKA.CKA_VALUE]);
            try
            {
                return value[0].GetValueAsByteArray();
            }
            finally
            {
                DisposeAll(value);
            }
        }
        finally
        {
            // Pkcs11Interop 5.3 may let the GC free the mechanism or template while the module reads them.
            GC.KeepAlive(mechanism);
            GC.KeepAlive(template);
            if (derived is not null)
            {
                session.DestroyObject(derived);
            }

            mechanism.Dispose();
            DisposeAll(template);
        }
    }

    private (IObjectHandle Public, IObjectHandle Private) GenerateTransportKey(ISession session, string label)
    {
        var f = _module.Factories.ObjectAttributeFactory;
        var transportLabel = "transport-" + label;
        var publicTemplate = new List<IObjectAttribute>
        {
            f.Create(CKA.CKA_TOKEN, false),
            f.Create(CKA.CKA_PRIVATE, false),
            f.Create(CKA.CKA_LABEL, transportLabel),
            f.Create(CKA.CKA_MODULUS_BITS, (ulong)TransportKeyBits),
            f.Create(CKA.CKA_PUBLIC_EXPONENT, new byte[] { 0x01, 0x00, 0x01 }),
            f.Create(CKA.CKA_WRAP, true),
            f.Create(CKA.CKA_ENCRYPT, true),
        };
        var privateTemplate = new List<IObjectAttribute>
        {
            f.Create(CKA.CKA_TOKEN, false),
            f.Create(CKA.CKA_PRIVATE, true),
            f.Create(CKA.CKA_SENSITIVE, true),
            f.Create(CKA.CKA_EXTRACTABLE, false),
            f.Create(CKA.CKA_LABEL, transportLabel),
            f.Create(CKA.CKA_UNWRAP, true),
            f.Create(CKA.CKA_DECRYPT, false),
        };
        var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN);
        try
        {
            session.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out var publicKey, out var privateKey);
            return (publicKey, privateKey);
        }
        finally
        {
            GC.KeepAlive(mechanism);
            GC.KeepAlive(publicTemplate);
            GC.KeepAlive(privateTemplate);
            mechanism.Dispose();
            DisposeAll(publicTemplate);
            DisposeAll(privateTemplate);
        }
    }

    private IObjectHandle UnwrapKek(ISession session, IObjectHandle transportPrivate, byte[] wrappedKek, string label)
    {
        var f = _module.Factories.ObjectAttributeFactory;
        var template = new List<IObjectAttribute>
        {
            f.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
            f.Create(CKA.CKA_KEY_TYPE, CKK.CKK_AES),
            f.Create(CKA.CKA_TOKEN, false),
            f.Create(CKA.CKA_PRIVATE, true),
            f.Create(CKA.CKA_SENSITIVE, true),
            f.Create(CKA.CKA_EXTRACTABLE, false),
            f.Create(CKA.CKA_LABEL, "kek-" + label),
            f.Create(CKA.CKA_UNWRAP, true),
        };
        // RSAES-OAEP with SHA-1 and MGF1-SHA-1, empty label (RFC 8017 §7.1; PKCS#11 v2.40 §2.1.8).
        var oaep = _module.Factories.MechanismParamsFactory.CreateCkRsaPkcsOaepParams(
            ConvertUtils.UInt64FromCKM(CKM.CKM_SHA_1), ConvertUtils.UInt64FromCKG(CKG.CKG_MGF1_SHA1),
            ConvertUtils.UInt64FromUInt32(CKZ.CKZ_DATA_SPECIFIED), null);
        var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_RSA_PKCS_OAEP, oaep);
        try
        {
            return session.UnwrapKey(mechanism, transportPrivate, wrappedKek, template);
        }
        finally
        {
            GC.KeepAlive(mechanism);
            GC.KeepAlive(oaep);
            GC.KeepAlive(template);
            mechanism.Dispose();
            oaep.Dispose();
            DisposeAll(template);
        }
    }

    private IObjectHandle UnwrapShare(ISession session, IObjectHandle kek, byte[] wrappedShare, string label, bool persistent)
    {
        var f = _module.Factories.ObjectAttributeFactory;
        // CKA_PRIVATE: SoftHSM stores non-private objects in clear in its token file.
        var template = new List<IObjectAttribute>
        {
            f.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY),
            f.Create(CKA.CKA_KEY_TYPE, CKK.CKK_DH),
            f.Create(CKA.CKA_TOKEN, persistent),
            f.Create(CKA.CKA_PRIVATE, true),
            f.Create(CKA.CKA_SENSITIVE, true),
            f.Create(CKA.CKA_EXTRACTABLE, false),
            f.Create(CKA.CKA_LABEL, label),
            f.Create(CKA.CKA_ID, Encoding.UTF8.GetBytes(label)),
            f.Create(CKA.CKA_DERIVE, true),
        };
        // AES key wrap with padding, RFC 5649 (PKCS#11 v2.40 current mechanisms §2.14.3).
        var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_WRAP_PAD);
        try
        {
            return session.UnwrapKey(mechanism, kek, wrappedShare, template);
        }
        finally
        {
            GC.KeepAlive(mechanism);
            GC.KeepAlive(template);
            mechanism.Dispose();
            DisposeAll(template);
        }
    }
}
