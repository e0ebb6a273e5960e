namespace ShareVault.Hardware;

/// <summary>What went wrong at the hardware boundary; each has its own, countable reason.</summary>
public enum ShareStoreError
{
    ModuleNotFound,
    TokenNotFound,
    WrongPin,
    PinUnavailable,
    KeyNotFound,
    KeyExists,
    MechanismNotSupported,
    DeviceUnreachable,
    BadUri,
    DeviceError,

    /// <summary>A TPM policy was not satisfied (e.g. PCR values changed since sealing).</summary>
    PolicyFailed,
}

/// <summary>
/// The one exception of the hardware boundary. It carries the native code (PKCS#11 <c>CKR_*</c>,
/// TPM response code) and never a PIN, share or key value.
/// </summary>
public sealed class ShareStoreException : Exception
{
    public ShareStoreException(ShareStoreError error, string message, string? nativeCode = null, Exception? inner = null)
        : base(nativeCode is null ? message : $"{message} ({nativeCode})", inner)
    {
        Error = error;
        NativeCode = nativeCode;
    }

    public ShareStoreError Error { get; }

    /// <summary>The native return code, e.g. <c>CKR_PIN_INCORRECT</c> or <c>0x9A2</c>.</summary>
    public string? NativeCode { get; }

    /// <summary>True when trying again later (another device, a reconnect) may succeed.</summary>
    public bool IsTransient => Error is ShareStoreError.DeviceUnreachable;
}
