using static ShareVault.Hardware.Tpm.TssNative;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// One connection to a TPM: a TCTI (chosen by its string, e.g. <c>swtpm:host=127.0.0.1,port=2321</c>
/// or <c>device:/dev/tpmrm0</c>) and an ESYS context over it. An ESYS context is single-threaded
/// (ESAPI §5.2), so every use goes through <see cref="Run{T}"/>, which serialises callers and runs
/// the commands under a watchdog: a TPM that stops answering gives a clear error, never a hang.
/// After an unreachable TPM or a timeout the connection is <see cref="IsBroken"/>; open a new one.
/// </summary>
internal sealed unsafe class TpmDevice : IDisposable
{
    private readonly Lock _gate = new();
    private nint _tcti;
    private nint _esys;
    private volatile bool _broken;
    private bool _stuck;
    private bool _disposed;

    private TpmDevice(string tcti, TimeSpan commandTimeout)
    {
        Tcti = tcti;
        CommandTimeout = commandTimeout;
    }

    /// <summary>The TCTI string: where the TPM is. Holds no secret.</summary>
    public string Tcti { get; }

    public TimeSpan CommandTimeout { get; }

    public bool IsBroken => _broken;

    /// <summary>Connects (TCTI loader, then Esys_Initialize), under the same watchdog as commands.</summary>
    public static TpmDevice Open(string tcti, TimeSpan commandTimeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(tcti);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(commandTimeout, TimeSpan.Zero);
        var device = new TpmDevice(tcti, commandTimeout);
        try
        {
            device.Run("connect", device.Connect);
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs TPM commands with the context to itself. Callers wait their turn; the commands get
    /// <paramref name="timeout"/> (default <see cref="CommandTimeout"/>) to finish.
    /// </summary>
    public T Run<T>(string what, Func<T> commands, TimeSpan? timeout = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var limit = timeout ?? CommandTimeout;
        lock (_gate)
        {
            if (_broken)
            {
                throw new ShareStoreException(ShareStoreError.DeviceUnreachable,
                    $"TPM unreachable at {Tcti}: the connection failed earlier; {what} was not attempted");
            }

            // A dedicated thread, not the thread pool: callers block here, and under thread-pool starvation a
            // queued work item could wait seconds for a thread and trip the watchdog with the TPM idle.
            var task = Task.Factory.StartNew(commands, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            bool finished;
            try
            {
                finished = task.Wait(limit);
            }
            catch (AggregateException)
            {
                finished = true;
            }

            if (!finished)
            {
                // The native call is still blocked in the TCTI; this context can never be used again.
                _broken = true;
                _stuck = true;
                throw new ShareStoreException(ShareStoreError.DeviceUnreachable,
                    $"TPM unreachable at {Tcti}: no answer to {what} within {limit.TotalSeconds:0.#} s");
            }

            try
            {
                return task.GetAwaiter().GetResult();
            }
            catch (ShareStoreException e) when (e.Error == ShareStoreError.DeviceUnreachable)
            {
                _broken = true;
                throw;
            }
        }
    }

    public void Run(string what, Action commands, TimeSpan? timeout = null) =>
        Run(what, () =>
        {
            commands();
            return 0;
        }, timeout);

    private void Connect()
    {
        var rc = Tss2_TctiLdr_Initialize(Tcti, out _tcti);
        if (rc != 0)
        {
            throw new ShareStoreException(ShareStoreError.DeviceUnreachable,
                $"TPM unreachable at {Tcti}: the TCTI could not connect", TpmResponseCode.Hex(rc));
        }

        Check(Esys_Initialize(out _esys, _tcti, 0), "Esys_Initialize");
    }

    // ---- Commands: call only inside Run. ----

    /// <summary>
    /// TPM2_CreatePrimary (Part 3 §24.1) of <see cref="TpmTemplates.StoragePrimary"/> in the owner
    /// hierarchy (empty owner auth, password session). Deterministic: same owner seed, same key.
    /// </summary>
    public uint CreateStoragePrimary()
    {
        using var arena = new NativeArena();
        var sensitive = arena.In(TpmTemplates.SensitiveCreate([], []), &Tss2_MU_TPM2B_SENSITIVE_CREATE_Unmarshal, "TPM2B_SENSITIVE_CREATE");
        var template = arena.In(TpmTemplates.StoragePrimary(), &Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC");
        var outsideInfo = arena.In([0, 0], &Tss2_MU_TPM2B_DATA_Unmarshal, "TPM2B_DATA");
        var creationPcr = arena.In([0, 0, 0, 0], &Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION");
        Check(Esys_CreatePrimary(_esys, TrRhOwner, TrPassword, TrNone, TrNone, sensitive, template, outsideInfo, creationPcr,
            out var handle, null, null, null, null), "TPM2_CreatePrimary");
        return handle;
    }

    /// <summary>
    /// TPM2_StartAuthSession (Part 3 §11.1), salted with <paramref name="saltKey"/> (the storage
    /// primary, so the session key is unknown to anyone watching the bus) and with AES-128-CFB
    /// parameter encryption (Part 1 §21.3). <paramref name="saltKey"/> = <see cref="TssNative.TrNone"/>
    /// for an unsalted trial session.
    /// </summary>
    public uint StartSession(uint saltKey, byte sessionType)
    {
        using var arena = new NativeArena();
        var symmetric = saltKey == TrNone
            ? new TpmWriter().U16(TpmConst.AlgNull).ToArray()
            : new TpmWriter().U16(TpmConst.AlgAes).U16(128).U16(TpmConst.AlgCfb).ToArray();
        var sym = arena.In(symmetric, &Tss2_MU_TPMT_SYM_DEF_Unmarshal, "TPMT_SYM_DEF");
        Check(Esys_StartAuthSession(_esys, saltKey, TrNone, TrNone, TrNone, TrNone, null, sessionType, sym, TpmConst.AlgSha256,
            out var session), "TPM2_StartAuthSession");
        SetSessionAttributes(session, TpmConst.SessionContinue);
        return session;
    }

    /// <summary>
    /// Which parameters the session encrypts for the next command: decrypt = the command's first
    /// parameter, encrypt = the response's first parameter; each only where that parameter is a TPM2B (Part 1 §21.1).
    /// </summary>
    public void SetSessionAttributes(uint session, byte flags) =>
        Check(Esys_TRSess_SetAttributes(_esys, session, flags, 0xFF), "Esys_TRSess_SetAttributes");

    /// <summary>Tells ESYS the auth value of an object, used for the session HMAC (never sent in clear).</summary>
    public void SetAuth(uint handle, ReadOnlySpan<byte> auth)
    {
        using var arena = new NativeArena();
        var wire = new TpmWriter().Tpm2b(auth).ToArray();
        try
        {
            var native = arena.In(wire, &Tss2_MU_TPM2B_AUTH_Unmarshal, "TPM2B_AUTH");
            Check(Esys_TR_SetAuth(_esys, handle, native), "Esys_TR_SetAuth");
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(wire);
        }
    }

    /// <summary>TPM2_Create (Part 3 §12.1): a new object under <paramref name="parent"/>; returns its blobs (TPM2B_PRIVATE, TPM2B_PUBLIC).</summary>
    public (byte[] Private, byte[] Public) Create(uint parent, uint session, byte[] sensitiveCreate, byte[] template)
    {
        using var arena = new NativeArena();
        try
        {
            var sensitive = arena.In(sensitiveCreate, &Tss2_MU_TPM2B_SENSITIVE_CREATE_Unmarshal, "TPM2B_SENSITIVE_CREATE");
            var pub = arena.In(template, &Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC");
            var outsideInfo = arena.In([0, 0], &Tss2_MU_TPM2B_DATA_Unmarshal, "TPM2B_DATA");
            var creationPcr = arena.In([0, 0, 0, 0], &Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION");
            SetSessionAttributes(session, TpmConst.SessionContinue | TpmConst.SessionDecrypt | TpmConst.SessionEncrypt);
            void* outPrivate = null;
            void* outPublic = null;
            Check(Esys_Create(_esys, parent, session, TrNone, TrNone, sensitive, pub, outsideInfo, creationPcr,
                &outPrivate, &outPublic, null, null, null), "TPM2_Create");
            var privateBlob = NativeArena.Out(outPrivate, &Tss2_MU_TPM2B_PRIVATE_Marshal, "TPM2B_PRIVATE");
            var publicBlob = NativeArena.Out(outPublic, &Tss2_MU_TPM2B_PUBLIC_Marshal, "TPM2B_PUBLIC");
            return (privateBlob, publicBlob);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(sensitiveCreate);
        }
    }

    /// <summary>TPM2_Load (Part 3 §12.2): the TPM decrypts and checks the blob's integrity under its parent.</summary>
    public uint Load(uint parent, uint session, byte[] privateBlob, byte[] publicBlob)
    {
        using var arena = new NativeArena();
        var priv = arena.In(privateBlob, &Tss2_MU_TPM2B_PRIVATE_Unmarshal, "TPM2B_PRIVATE");
        var pub = arena.In(publicBlob, &Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC");
        SetSessionAttributes(session, TpmConst.SessionContinue);
        Check(Esys_Load(_esys, parent, session, TrNone, TrNone, priv, pub, out var handle), "TPM2_Load");
        return handle;
    }

    /// <summary>TPM2_RSA_Decrypt (Part 3 §14.3) with TPM_ALG_NULL: the raw RSA private operation c^d mod n.</summary>
    public byte[] RsaDecrypt(uint key, uint session, ReadOnlySpan<byte> input)
    {
        using var arena = new NativeArena();
        var cipher = arena.In(new TpmWriter().Tpm2b(input).ToArray(), &Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Unmarshal, "TPM2B_PUBLIC_KEY_RSA");
        var scheme = arena.In(new TpmWriter().U16(TpmConst.AlgNull).ToArray(), &Tss2_MU_TPMT_RSA_DECRYPT_Unmarshal, "TPMT_RSA_DECRYPT");
        var label = arena.In([0, 0], &Tss2_MU_TPM2B_DATA_Unmarshal, "TPM2B_DATA");
        SetSessionAttributes(session, TpmConst.SessionContinue | TpmConst.SessionDecrypt | TpmConst.SessionEncrypt);
        void* message = null;
        Check(Esys_RSA_Decrypt(_esys, key, session, TrNone, TrNone, cipher, scheme, label, &message), "TPM2_RSA_Decrypt");
        var wire = NativeArena.Out(message, &Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Marshal, "TPM2B_PUBLIC_KEY_RSA");
        return new TpmReader(wire).Tpm2b().ToArray();
    }

    /// <summary>TPM2_Sign (Part 3 §20.2) of a SHA-256 digest with ECDSA; returns (r, s).</summary>
    public (byte[] R, byte[] S) SignEcdsaSha256(uint key, uint session, ReadOnlySpan<byte> digest)
    {
        using var arena = new NativeArena();
        var d = arena.In(new TpmWriter().Tpm2b(digest).ToArray(), &Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST");
        var scheme = arena.In(new TpmWriter().U16(TpmConst.AlgEcdsa).U16(TpmConst.AlgSha256).ToArray(), &Tss2_MU_TPMT_SIG_SCHEME_Unmarshal, "TPMT_SIG_SCHEME");
        // A null ticket: the key is not restricted, so no proof that the TPM hashed the message is needed (Part 3 §20.2.1).
        var validation = arena.In(new TpmWriter().U16(TpmConst.StHashCheck).U32(TpmConst.RhNull).Tpm2b([]).ToArray(),
            &Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal, "TPMT_TK_HASHCHECK");
        // The response's first parameter is a TPMT_SIGNATURE, not a TPM2B: it cannot be encrypted.
        SetSessionAttributes(session, TpmConst.SessionContinue | TpmConst.SessionDecrypt);
        void* signature = null;
        Check(Esys_Sign(_esys, key, session, TrNone, TrNone, d, scheme, validation, &signature), "TPM2_Sign");
        var wire = NativeArena.Out(signature, &Tss2_MU_TPMT_SIGNATURE_Marshal, "TPMT_SIGNATURE");
        var reader = new TpmReader(wire);
        var alg = reader.U16();
        reader.U16(); // hash
        if (alg != TpmConst.AlgEcdsa)
        {
            throw new ShareStoreException(ShareStoreError.DeviceError, $"TPM at {Tcti} returned a signature of algorithm 0x{alg:X4}, not ECDSA");
        }

        var r = reader.Tpm2b().ToArray();
        var s = reader.Tpm2b().ToArray();
        return (r, s);
    }

    /// <summary>TPM2_Unseal (Part 3 §12.7); the response is encrypted by the session.</summary>
    public byte[] Unseal(uint item, uint session)
    {
        SetSessionAttributes(session, TpmConst.SessionContinue | TpmConst.SessionEncrypt);
        void* data = null;
        Check(Esys_Unseal(_esys, item, session, TrNone, TrNone, &data), "TPM2_Unseal");
        // TPM2B_SENSITIVE_DATA: UINT16 size + MAX_SYM_DATA (128) bytes.
        var wire = NativeArena.Out(data, &Tss2_MU_TPM2B_SENSITIVE_DATA_Marshal, "TPM2B_SENSITIVE_DATA", 2 + TpmConst.MaxSealedBytes);
        try
        {
            return new TpmReader(wire).Tpm2b().ToArray();
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(wire);
        }
    }

    /// <summary>TPM2_PolicyPCR (Part 3 §23.7) over the current values of the selected PCRs.</summary>
    public void PolicyPcr(uint session, byte[] pcrSelection)
    {
        using var arena = new NativeArena();
        var digest = arena.In([0, 0], &Tss2_MU_TPM2B_DIGEST_Unmarshal, "TPM2B_DIGEST");
        var pcrs = arena.In(pcrSelection, &Tss2_MU_TPML_PCR_SELECTION_Unmarshal, "TPML_PCR_SELECTION");
        Check(Esys_PolicyPCR(_esys, session, TrNone, TrNone, TrNone, digest, pcrs), "TPM2_PolicyPCR");
    }

    /// <summary>TPM2_PolicyAuthValue (Part 3 §23.17): the object's auth value must be proven by the session HMAC.</summary>
    public void PolicyAuthValue(uint session) =>
        Check(Esys_PolicyAuthValue(_esys, session, TrNone, TrNone, TrNone), "TPM2_PolicyAuthValue");

    /// <summary>TPM2_PolicyGetDigest (Part 3 §23.19).</summary>
    public byte[] PolicyGetDigest(uint session)
    {
        void* digest = null;
        Check(Esys_PolicyGetDigest(_esys, session, TrNone, TrNone, TrNone, &digest), "TPM2_PolicyGetDigest");
        var wire = NativeArena.Out(digest, &Tss2_MU_TPM2B_DIGEST_Marshal, "TPM2B_DIGEST");
        return new TpmReader(wire).Tpm2b().ToArray();
    }

    /// <summary>TPM2_PCR_Extend (Part 3 §22.2) of the SHA-256 bank with one digest; PCRs 0–16 and 23 take an empty auth.</summary>
    public void PcrExtend(int pcr, ReadOnlySpan<byte> sha256)
    {
        using var arena = new NativeArena();
        var digests = arena.In(new TpmWriter().U32(1).U16(TpmConst.AlgSha256).Bytes(sha256).ToArray(),
            &Tss2_MU_TPML_DIGEST_VALUES_Unmarshal, "TPML_DIGEST_VALUES");
        Check(Esys_PCR_Extend(_esys, TrPcr0 + (uint)pcr, TrPassword, TrNone, TrNone, digests), "TPM2_PCR_Extend");
    }

    /// <summary>TPM2_FlushContext (Part 3 §28.4). Best effort: used in finally blocks.</summary>
    public void Flush(uint handle)
    {
        if (handle is 0 or TrNone)
        {
            return;
        }

        var rc = Esys_FlushContext(_esys, handle);
        if (rc != 0 && TpmResponseCode.IsUnreachable(rc))
        {
            _broken = true;
        }
    }

    /// <summary>
    /// The usual frame: storage primary re-created, a salted encrypting HMAC session on it, the
    /// work, then both flushed, so nothing stays loaded between calls (swtpm holds 3 objects).
    /// </summary>
    public T WithPrimary<T>(Func<uint, uint, T> work)
    {
        var primary = CreateStoragePrimary();
        uint session = TrNone;
        try
        {
            session = StartSession(primary, TpmConst.SessionHmac);
            return work(primary, session);
        }
        finally
        {
            Flush(session);
            Flush(primary);
        }
    }

    private void Check(uint rc, string what)
    {
        if (rc != 0)
        {
            throw TpmResponseCode.ToException(rc, what, Tcti);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        lock (_gate)
        {
            if (_stuck)
            {
                // A thread is still inside the TCTI with these contexts; freeing them would be a use-after-free.
                return;
            }

            if (_esys != 0)
            {
                Esys_Finalize(ref _esys);
            }

            if (_tcti != 0)
            {
                Tss2_TctiLdr_Finalize(ref _tcti);
            }
        }
    }
}
