using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace ShareVault.Hardware.Pkcs11;

/// <summary>
/// A custodian's PKCS#11 token. Logs in once, keeps a pool of sessions (one per concurrent caller,
/// PKCS#11 v2.40 §5.6: a session is not to be used by two threads at once) and caches key handles,
/// so the hot path is one C_Sign.
/// </summary>
public sealed partial class Pkcs11ShareStore : IShareStore
{
    internal const string RsaKeyKind = "rsa-private-key";

    private readonly Pkcs11Module _module;
    private readonly ISlot _slot;
    private readonly ConcurrentBag<ISession> _idle = [];
    private readonly ConcurrentBag<ISession> _all = [];
    private readonly ConcurrentDictionary<string, IObjectHandle> _privateKeys = new(StringComparer.Ordinal);
    private readonly IMechanism _rawRsa;
    private readonly CallsInFlight _calls;

    private Pkcs11ShareStore(Pkcs11Module module, ISlot slot, string tokenLabel)
    {
        _module = module;
        _slot = slot;
        CustodianName = tokenLabel;
        _rawRsa = module.Factories.MechanismFactory.Create(CKM.CKM_RSA_X_509);
        _calls = new CallsInFlight(tokenLabel, Release);
    }

    public string CustodianName { get; }

    internal Pkcs11Module Module => _module;

    /// <summary>Opens the token named by the URI and logs in with the PIN from its pin-source.</summary>
    public static Pkcs11ShareStore Open(Pkcs11Uri uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        var module = Pkcs11Module.Load(uri.ModulePath);
        var token = uri.Token!;
        var slot = module.FindToken(token);
        var store = new Pkcs11ShareStore(module, slot, token);
        try
        {
            var session = store.OpenSession();
            var pin = PinSource.Read(uri.PinSource, token);
            try
            {
                session.Login(CKU.CKU_USER, pin);
            }
            catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
            {
                // Another store in this process has logged in to the token; login state is per application.
            }
            catch (Pkcs11Exception e) when (e.RV is CKR.CKR_PIN_INCORRECT or CKR.CKR_PIN_INVALID or CKR.CKR_PIN_LEN_RANGE)
            {
                throw new ShareStoreException(ShareStoreError.WrongPin, $"Wrong PIN for token '{token}'", e.RV.ToString());
            }
            catch (Pkcs11Exception e) when (e.RV == CKR.CKR_PIN_LOCKED)
            {
                throw new ShareStoreException(ShareStoreError.WrongPin, $"PIN of token '{token}' is locked", e.RV.ToString());
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pin);
            }

            store._idle.Add(session);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public RsaPublicKey GenerateRsaKey(string objectLabel, int bits)
    {
        ArgumentException.ThrowIfNullOrEmpty(objectLabel);
        if (bits is not (2048 or 3072 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "RSA key size must be 2048, 3072 or 4096 bits");
        }

        RequireMechanism(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN);
        RequireMechanism(CKM.CKM_RSA_X_509);
        return WithSession(session =>
        {
            if (FindPrivateKey(session, objectLabel, CKK.CKK_RSA) is not null)
            {
                throw new ShareStoreException(ShareStoreError.KeyExists,
                    $"Token '{CustodianName}' already holds a key labelled '{objectLabel}'");
            }

            var f = _module.Factories.ObjectAttributeFactory;
            var id = Encoding.UTF8.GetBytes(objectLabel);
            var publicTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true),
                f.Create(CKA.CKA_PRIVATE, false),
                f.Create(CKA.CKA_LABEL, objectLabel),
                f.Create(CKA.CKA_ID, id),
                f.Create(CKA.CKA_MODULUS_BITS, (ulong)bits),
                f.Create(CKA.CKA_PUBLIC_EXPONENT, new byte[] { 0x01, 0x00, 0x01 }),
                f.Create(CKA.CKA_VERIFY, true),
                f.Create(CKA.CKA_ENCRYPT, true),
            };
            // CKA_PRIVATE: SoftHSM stores non-private objects in clear in its token file.
            var privateTemplate = new List<IObjectAttribute>
            {
                f.Create(CKA.CKA_TOKEN, true),
                f.Create(CKA.CKA_PRIVATE, true),
                f.Create(CKA.CKA_SENSITIVE, true),
                f.Create(CKA.CKA_EXTRACTABLE, false),
                f.Create(CKA.CKA_LABEL, objectLabel),
                f.Create(CKA.CKA_ID, id),
                f.Create(CKA.CKA_SIGN, true),
                f.Create(CKA.CKA_DECRYPT, true),
            };
            using var mechanism = _module.Factories.MechanismFactory.Create(CKM.CKM_RSA_PKCS_KEY_PAIR_GEN);
            try
            {
                session.GenerateKeyPair(mechanism, publicTemplate, privateTemplate, out var publicKey, out var privateKey);
                _privateKeys[objectLabel] = privateKey;
                return ReadPublic(session, publicKey);
            }
            finally
            {
                GC.KeepAlive(mechanism);
                DisposeAll(publicTemplate);
                DisposeAll(privateTemplate);
            }
        });
    }

    public RsaPublicKey GetRsaPublicKey(string objectLabel) => WithSession(session =>
    {
        var handle = FindObject(session, CKO.CKO_PUBLIC_KEY, objectLabel, CKK.CKK_RSA)
            ?? throw KeyNotFound(objectLabel);
        return ReadPublic(session, handle);
    });

    public byte[] RsaRawPrivate(string objectLabel, ReadOnlySpan<byte> input)
    {
        var data = input.ToArray();
        return WithSession(session => RawPrivate(session, objectLabel, data));
    }

    /// <summary><c>C_Sign(CKM_RSA_X_509)</c> on a session <see cref="WithSession"/> lent (the call in flight a dispose must wait for).</summary>
    internal byte[] RawPrivate(ISession session, string objectLabel, byte[] data)
    {
        var key = PrivateKeyHandle(session, objectLabel);
        try
        {
            return session.Sign(_rawRsa, key, data);
        }
        catch (Pkcs11Exception e) when (e.RV is CKR.CKR_OBJECT_HANDLE_INVALID or CKR.CKR_KEY_HANDLE_INVALID)
        {
            // The key was deleted or replaced since we cached its handle: look it up again once.
            _privateKeys.TryRemove(objectLabel, out _);
            return session.Sign(_rawRsa, PrivateKeyHandle(session, objectLabel), data);
        }
    }

    public void DeleteKey(string objectLabel) => WithSession(session =>
    {
        foreach (var cls in new[] { CKO.CKO_PRIVATE_KEY, CKO.CKO_PUBLIC_KEY, CKO.CKO_SECRET_KEY })
        {
            foreach (var handle in FindObjects(session, cls, objectLabel))
            {
                session.DestroyObject(handle);
            }
        }

        _privateKeys.TryRemove(objectLabel, out _);
        _shares.TryRemove(objectLabel, out _);
        return 0;
    });

    public IReadOnlyList<StoredObject> ListObjects() => WithSession(session =>
    {
        var f = _module.Factories.ObjectAttributeFactory;
        var template = new List<IObjectAttribute> { f.Create(CKA.CKA_CLASS, CKO.CKO_PRIVATE_KEY) };
        try
        {
            var result = new List<StoredObject>();
            foreach (var handle in session.FindAllObjects(template))
            {
                List<IObjectAttribute> attrs;
                try
                {
                    attrs = session.GetAttributeValue(handle, [CKA.CKA_LABEL, CKA.CKA_KEY_TYPE]);
                }
                catch (Pkcs11Exception e) when (e.RV == CKR.CKR_OBJECT_HANDLE_INVALID)
                {
                    continue; // destroyed (by another session or process) since C_FindObjects found it: no longer held
                }

                var keyType = (CKK)attrs[1].GetValueAsUlong();
                var kind = keyType switch
                {
                    CKK.CKK_RSA => RsaKeyKind,
                    CKK.CKK_DH => "shoup-share",
                    CKK.CKK_EC => "ec-private-key",
                    _ => keyType.ToString(),
                };
                result.Add(new StoredObject(attrs[0].GetValueAsString(), kind));
            }

            return (IReadOnlyList<StoredObject>)[.. result.OrderBy(o => o.Label, StringComparer.Ordinal)];
        }
        finally
        {
            DisposeAll(template);
        }
    });

    /// <summary>
    /// Runs <paramref name="action"/> on a pooled, logged-in session; PKCS#11 errors become
    /// <see cref="ShareStoreException"/> with their CKR code. Every call into the module goes through
    /// here, so <see cref="Dispose"/> never closes a session or frees the mechanism under one
    /// (<see cref="CallsInFlight"/>).
    /// </summary>
    internal T WithSession<T>(Func<ISession, T> action) => _calls.Run(() => WithSessionCore(action));

    /// <summary>Calls in flight now (tests).</summary>
    internal int CallsInFlight => _calls.Count;

    private T WithSessionCore<T>(Func<ISession, T> action)
    {
        if (!_idle.TryTake(out var session))
        {
            session = Translate(OpenSession);
        }

        var healthy = true;
        try
        {
            return Translate(() => action(session));
        }
        catch (ShareStoreException e) when (e.Error is ShareStoreError.DeviceUnreachable)
        {
            healthy = false;
            throw;
        }
        finally
        {
            if (healthy && !_calls.IsClosed)
            {
                _idle.Add(session);
            }
        }
    }

    internal IObjectHandle? FindObject(ISession session, CKO cls, string label, CKK keyType) =>
        FindObjects(session, cls, label, keyType).FirstOrDefault();

    internal List<IObjectHandle> FindObjects(ISession session, CKO cls, string label, CKK? keyType = null)
    {
        var f = _module.Factories.ObjectAttributeFactory;
        var template = new List<IObjectAttribute> { f.Create(CKA.CKA_CLASS, cls), f.Create(CKA.CKA_LABEL, label) };
        if (keyType is { } type)
        {
            template.Add(f.Create(CKA.CKA_KEY_TYPE, type));
        }

        try
        {
            return session.FindAllObjects(template);
        }
        finally
        {
            DisposeAll(template);
        }
    }

    internal ShareStoreException KeyNotFound(string label) =>
        new(ShareStoreError.KeyNotFound, $"Token '{CustodianName}' holds no key labelled '{label}'");

    internal void RequireMechanism(CKM mechanism)
    {
        var supported = Translate(() => _slot.GetMechanismList());
        if (!supported.Contains(mechanism))
        {
            throw new ShareStoreException(ShareStoreError.MechanismNotSupported,
                $"Token '{CustodianName}' does not support {mechanism}", CKR.CKR_MECHANISM_INVALID.ToString());
        }
    }

    internal static void DisposeAll(IEnumerable<IDisposable> items)
    {
        foreach (var item in items)
        {
            item.Dispose();
        }
    }

    private IObjectHandle? FindPrivateKey(ISession session, string label, CKK keyType) =>
        FindObject(session, CKO.CKO_PRIVATE_KEY, label, keyType);

    private IObjectHandle PrivateKeyHandle(ISession session, string label)
    {
        if (_privateKeys.TryGetValue(label, out var cached))
        {
            return cached;
        }

        var handle = FindPrivateKey(session, label, CKK.CKK_RSA) ?? throw KeyNotFound(label);
        _privateKeys[label] = handle;
        return handle;
    }

    private static RsaPublicKey ReadPublic(ISession session, IObjectHandle handle)
    {
        var attrs = session.GetAttributeValue(handle, [CKA.CKA_MODULUS, CKA.CKA_PUBLIC_EXPONENT]);
        return RsaPublicKey.FromBytes(attrs[0].GetValueAsByteArray(), attrs[1].GetValueAsByteArray());
    }

    private ISession OpenSession()
    {
        var session = _slot.OpenSession(SessionType.ReadWrite);
        _all.Add(session);
        return session;
    }

    private T Translate<T>(Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Pkcs11Exception e)
        {
            throw e.RV switch
            {
                CKR.CKR_DEVICE_REMOVED or CKR.CKR_TOKEN_NOT_PRESENT or CKR.CKR_DEVICE_ERROR or CKR.CKR_SESSION_CLOSED
                    or CKR.CKR_SESSION_HANDLE_INVALID or CKR.CKR_TOKEN_NOT_RECOGNIZED =>
                    new ShareStoreException(ShareStoreError.DeviceUnreachable, $"Token '{CustodianName}' is unreachable", e.RV.ToString(), e),
                CKR.CKR_MECHANISM_INVALID or CKR.CKR_MECHANISM_PARAM_INVALID or CKR.CKR_KEY_TYPE_INCONSISTENT
                    or CKR.CKR_KEY_FUNCTION_NOT_PERMITTED =>
                    new ShareStoreException(ShareStoreError.MechanismNotSupported, $"Token '{CustodianName}' refused the operation", e.RV.ToString(), e),
                CKR.CKR_OBJECT_HANDLE_INVALID or CKR.CKR_KEY_HANDLE_INVALID =>
                    new ShareStoreException(ShareStoreError.KeyNotFound, $"A key of token '{CustodianName}' has gone", e.RV.ToString(), e),
                CKR.CKR_USER_NOT_LOGGED_IN =>
                    new ShareStoreException(ShareStoreError.WrongPin, $"Not logged in to token '{CustodianName}'", e.RV.ToString(), e),
                _ => new ShareStoreException(ShareStoreError.DeviceError, $"Token '{CustodianName}': {e.Method} failed", e.RV.ToString(), e),
            };
        }
    }

    /// <summary>Refuses new calls; the sessions and the mechanism are released once no call is in flight.</summary>
    public void Dispose() => _calls.Close();

    private void Release()
    {
        foreach (var session in _all)
        {
            try
            {
                session.Dispose();
            }
            catch (Pkcs11Exception)
            {
                // Closing a session of a removed token fails; nothing is left to release.
            }
        }

        _rawRsa.Dispose();
    }
}
