using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ShareVault.Evidence;

/// <summary>
/// How a device proves who it is to the embedded broker (shared by agent and service) without any shared secret: MQTT username =
/// device id, password = <c>v1.&lt;unix-ms&gt;.&lt;base64url ES256 signature&gt;</c> over the UTF-8 text
/// <c>"sharevault-mqtt-auth/v1\n{device id}\n{unix-ms}"</c> made with the device's enrolled key
/// (IEEE P1363 r||s, as JWS ES256, RFC 7518 §3.4). Works with hardware keys (TPM, PKCS#11) because
/// only a signature is needed. Accepted within a clock window; use it over TLS so it cannot be
/// replayed by an eavesdropper. A TLS client certificate carrying the enrolled key is the alternative.
/// </summary>
public static class DeviceProof
{
    public const string Prefix = "v1.";

    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    public static string CreatePassword(string deviceId, ECDsa key, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(key);
        var ms = now.ToUnixTimeMilliseconds();
        var signature = key.SignData(Message(deviceId, ms), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return Prefix + ms.ToString(CultureInfo.InvariantCulture) + "." + System.Buffers.Text.Base64Url.EncodeToString(signature);
    }

    /// <summary>Checks a password; false with a reason (never an exception) when it does not prove possession of the key.</summary>
    public static bool Verify(string deviceId, string? password, byte[] publicKeySpki, DateTimeOffset now, out string reason)
    {
        reason = string.Empty;
        if (password is null || !password.StartsWith(Prefix, StringComparison.Ordinal))
        {
            reason = "password is not a v1 device proof";
            return false;
        }

        var parts = password.Split('.');
        if (parts.Length != 3 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            reason = "malformed device proof";
            return false;
        }

        var time = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(ms, 0, 253402300799999));
        if ((now - time).Duration() > Window)
        {
            reason = "device proof is outside the clock window";
            return false;
        }

        try
        {
            var signature = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(publicKeySpki, out _);
            if (!key.VerifyData(Message(deviceId, ms), signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
            {
                reason = "device proof signature does not verify under the enrolled key";
                return false;
            }

            return true;
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            reason = "malformed device proof";
            return false;
        }
    }

    private static byte[] Message(string deviceId, long ms) =>
        Encoding.UTF8.GetBytes("sharevault-mqtt-auth/v1\n" + deviceId + "\n" + ms.ToString(CultureInfo.InvariantCulture));
}
