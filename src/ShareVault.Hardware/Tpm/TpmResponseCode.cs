using System.Runtime.InteropServices;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// Turns a TSS2_RC into a <see cref="ShareStoreException"/> with a short meaning and the code in hex.
/// TPM codes follow TPM 2.0 Part 2 §6.6 (format zero / format one with handle, session or parameter
/// number in bits 8–11); TSS layers sit in bits 16–23 (TSS 2.0 overview §6.1.2).
/// </summary>
internal static class TpmResponseCode
{
    private const uint LayerMask = 0xFF0000;
    private const uint TctiLayer = 0x0A0000;
    private const uint SysLayer = 0x080000;
    private const uint EsysLayer = 0x070000;
    private const uint BaseTryAgain = 9;
    private const uint BaseIoError = 10;
    private const uint BaseNoConnection = 14;

    /// <summary>The code as ShareVault shows it, e.g. <c>0x9A2</c>.</summary>
    public static string Hex(uint rc) => $"0x{rc:X}";

    public static bool IsUnreachable(uint rc)
    {
        var layer = rc & LayerMask;
        var baseRc = rc & 0xFFFF;
        return layer == TctiLayer
            || (layer is EsysLayer or SysLayer && baseRc is BaseTryAgain or BaseIoError or BaseNoConnection);
    }

    /// <summary>A short, secret-free meaning for the TPM codes a user is likely to meet.</summary>
    public static string Meaning(uint rc)
    {
        if ((rc & LayerMask) != 0)
        {
            return IsUnreachable(rc) ? "TPM unreachable" : Decode(rc);
        }

        // Format one (bit 7): the error number is bits 0–5; format zero: bits 0–6 with bit 8 (VER1) or bit 11 (warning).
        var formatOne = (rc & 0x80) != 0;
        var code = formatOne ? 0x80 | (rc & 0x3F) : rc & 0xFFF;
        return code switch
        {
            0x8E => "auth value check failed, counted towards lockout",
            0xA2 => "bad auth",
            0x9D => "policy check failed",
            0x9F => "integrity check failed: the key blob does not belong to this TPM or was altered",
            0x82 => "attributes do not allow this",
            0x84 => "value out of range",
            0x8B => "handle not known",
            0x95 => "size out of range",
            0x92 => "unsupported scheme",
            0x9C => "key is not usable",
            0x921 => "TPM is in dictionary-attack lockout",
            0x902 => "out of object memory: objects were not flushed",
            0x903 => "out of session memory",
            0x922 => "TPM asks to retry",
            0x908 => "TPM yielded",
            0x100 => "TPM not initialised (TPM2_Startup missing)",
            0x101 => "TPM in failure mode",
            _ => Decode(rc),
        };
    }

    /// <summary>Builds the exception for a failed TSS call.</summary>
    public static ShareStoreException ToException(uint rc, string what, string where)
    {
        var meaning = Meaning(rc);
        var error = Classify(rc);
        var message = error == ShareStoreError.DeviceUnreachable
            ? $"TPM unreachable at {where}: {what} failed"
            : $"TPM at {where}: {what} failed: {meaning}";
        return new ShareStoreException(error, message, Hex(rc));
    }

    public static ShareStoreError Classify(uint rc)
    {
        if (IsUnreachable(rc))
        {
            return ShareStoreError.DeviceUnreachable;
        }

        if ((rc & LayerMask) != 0)
        {
            return ShareStoreError.DeviceError;
        }

        var formatOne = (rc & 0x80) != 0;
        var code = formatOne ? 0x80 | (rc & 0x3F) : rc & 0xFFF;
        return code switch
        {
            0x8E or 0xA2 or 0x921 => ShareStoreError.WrongPin,
            0x9D => ShareStoreError.PolicyFailed,
            0x8B => ShareStoreError.KeyNotFound,
            _ => ShareStoreError.DeviceError,
        };
    }

    private static string Decode(uint rc)
    {
        try
        {
            var text = Marshal.PtrToStringUTF8(TssNative.Tss2_RC_Decode(rc));
            return string.IsNullOrEmpty(text) ? "TSS error" : text;
        }
        catch (DllNotFoundException)
        {
            return "TSS error";
        }
    }
}
