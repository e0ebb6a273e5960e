using System.Runtime.InteropServices;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// The few tpm2-tss 3.x entry points ShareVault calls (TCG TSS 2.0 ESAPI, MUAPI, TCTI loader and
/// RC decoder specifications). Structures cross this boundary only as native buffers filled by
/// <c>Tss2_MU_*_Unmarshal</c> from wire-format bytes built in C#, so no C struct layout is mirrored.
/// </summary>
internal static unsafe partial class TssNative
{
    private const string Esys = "libtss2-esys.so.0";
    private const string Mu = "libtss2-mu.so.0";
    private const string TctiLdr = "libtss2-tctildr.so.0";
    private const string Rc = "libtss2-rc.so.0";

    // ESYS_TR constants (TSS 2.0 ESAPI specification §7.2).
    public const uint TrNone = 0xFFF;
    public const uint TrPassword = 0x0FF;
    public const uint TrRhOwner = 0x101;
    public const uint TrRhNull = 0x107;
    public const uint TrPcr0 = 0x000;

    /// <summary>Esys_SetTimeout: -1 blocks forever.</summary>
    public const int TimeoutBlock = -1;

    /// <summary>
    /// tpm2-tss logs its own errors to stderr; ShareVault reports the decoded response code itself,
    /// so the TSS is quiet unless the operator sets TSS2_LOG (e.g. <c>all+warning</c>) to diagnose.
    /// Must run before the first TSS call: the TSS reads TSS2_LOG once, with getenv.
    /// </summary>
    public static void QuietLogsUnlessConfigured()
    {
        if (Environment.GetEnvironmentVariable("TSS2_LOG") is null)
        {
            _ = SetEnv("TSS2_LOG", "all+none", 0);
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport(TctiLdr, StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint Tss2_TctiLdr_Initialize(string? nameConf, out nint context);

    [LibraryImport(TctiLdr)]
    public static partial void Tss2_TctiLdr_Finalize(ref nint context);

    [LibraryImport(Esys)]
    public static partial uint Esys_Initialize(out nint esysContext, nint tcti, nint abiVersion);

    [LibraryImport(Esys)]
    public static partial void Esys_Finalize(ref nint esysContext);

    [LibraryImport(Esys)]
    public static partial uint Esys_SetTimeout(nint esysContext, int timeout);

    [LibraryImport(Esys)]
    public static partial void Esys_Free(void* ptr);

    [LibraryImport(Esys)]
    public static partial uint Esys_TR_SetAuth(nint esysContext, uint handle, void* authValue);

    [LibraryImport(Esys)]
    public static partial uint Esys_TR_Close(nint esysContext, ref uint handle);

    [LibraryImport(Esys)]
    public static partial uint Esys_TRSess_SetAttributes(nint esysContext, uint session, byte flags, byte mask);

    [LibraryImport(Esys)]
    public static partial uint Esys_FlushContext(nint esysContext, uint flushHandle);

    [LibraryImport(Esys)]
    public static partial uint Esys_StartAuthSession(nint esysContext, uint tpmKey, uint bind, uint shandle1, uint shandle2, uint shandle3,
        void* nonceCaller, byte sessionType, void* symmetric, ushort authHash, out uint sessionHandle);

    [LibraryImport(Esys)]
    public static partial uint Esys_CreatePrimary(nint esysContext, uint primaryHandle, uint shandle1, uint shandle2, uint shandle3,
        void* inSensitive, void* inPublic, void* outsideInfo, void* creationPcr, out uint objectHandle,
        void** outPublic, void** creationData, void** creationHash, void** creationTicket);

    [LibraryImport(Esys)]
    public static partial uint Esys_Create(nint esysContext, uint parentHandle, uint shandle1, uint shandle2, uint shandle3,
        void* inSensitive, void* inPublic, void* outsideInfo, void* creationPcr,
        void** outPrivate, void** outPublic, void** creationData, void** creationHash, void** creationTicket);

    [LibraryImport(Esys)]
    public static partial uint Esys_Load(nint esysContext, uint parentHandle, uint shandle1, uint shandle2, uint shandle3,
        void* inPrivate, void* inPublic, out uint objectHandle);

    [LibraryImport(Esys)]
    public static partial uint Esys_ReadPublic(nint esysContext, uint objectHandle, uint shandle1, uint shandle2, uint shandle3,
        void** outPublic, void** name, void** qualifiedName);

    [LibraryImport(Esys)]
    public static partial uint Esys_RSA_Decrypt(nint esysContext, uint keyHandle, uint shandle1, uint shandle2, uint shandle3,
        void* cipherText, void* inScheme, void* label, void** message);

    [LibraryImport(Esys)]
    public static partial uint Esys_Sign(nint esysContext, uint keyHandle, uint shandle1, uint shandle2, uint shandle3,
        void* digest, void* inScheme, void* validation, void** signature);

    [LibraryImport(Esys)]
    public static partial uint Esys_Unseal(nint esysContext, uint itemHandle, uint shandle1, uint shandle2, uint shandle3, void** outData);

    [LibraryImport(Esys)]
    public static partial uint Esys_PolicyPCR(nint esysContext, uint policySession, uint shandle1, uint shandle2, uint shandle3,
        void* pcrDigest, void* pcrs);

    [LibraryImport(Esys)]
    public static partial uint Esys_PolicyAuthValue(nint esysContext, uint policySession, uint shandle1, uint shandle2, uint shandle3);

    [LibraryImport(Esys)]
    public static partial uint Esys_PolicyGetDigest(nint esysContext, uint policySession, uint shandle1, uint shandle2, uint shandle3,
        void** policyDigest);

    [LibraryImport(Esys)]
    public static partial uint Esys_PCR_Extend(nint esysContext, uint pcrHandle, uint shandle1, uint shandle2, uint shandle3, void* digests);

    [LibraryImport(Esys)]
    public static partial uint Esys_PCR_Read(nint esysContext, uint shandle1, uint shandle2, uint shandle3, void* pcrSelectionIn,
        out uint pcrUpdateCounter, void** pcrSelectionOut, void** pcrValues);

    [LibraryImport(Rc)]
    public static partial nint Tss2_RC_Decode(uint rc);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PUBLIC_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PUBLIC_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PRIVATE_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PRIVATE_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_SENSITIVE_CREATE_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_AUTH_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_DATA_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_DIGEST_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_DIGEST_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_PUBLIC_KEY_RSA_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPM2B_SENSITIVE_DATA_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPMT_SYM_DEF_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPMT_RSA_DECRYPT_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPMT_SIG_SCHEME_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPMT_TK_HASHCHECK_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPMT_SIGNATURE_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPML_PCR_SELECTION_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPML_DIGEST_VALUES_Unmarshal(byte* buffer, nuint bufferSize, nuint* offset, void* dest);

    [LibraryImport(Mu)]
    public static partial uint Tss2_MU_TPML_DIGEST_Marshal(void* src, byte* buffer, nuint bufferSize, nuint* offset);
}
