using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Text;

namespace ShareVault.Evidence;

/// <summary>
/// Verifies untrusted evidence bytes: size, COSE_Sign1 structure, protected headers (ES256 only,
/// kid, content type), the signature under the device's enrolled key, then the payload. Every
/// failure is a result with a reason; hostile bytes never raise an exception.
/// </summary>
public static class EvidenceVerifier
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Verifies one record. <paramref name="keyForDevice"/> returns the enrolled public key for a
    /// device id, or null when the device is unknown; the verifier does not dispose it.
    /// </summary>
    public static EvidenceVerification Verify(ReadOnlySpan<byte> cose, Func<string, ECDsa?> keyForDevice, EvidenceLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(keyForDevice);
        limits ??= EvidenceLimits.Default;
        var hash = EvidenceRecord.Hash(cose);
        if (cose.Length > limits.MaxRecordBytes)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.TooLarge, $"{cose.Length} bytes, at most {limits.MaxRecordBytes} allowed", null, hash);
        }

        CoseSign1Message message;
        try
        {
            message = CoseMessage.DecodeSign1(cose);
        }
        catch (Exception e) when (e is CryptographicException or CborContentException or InvalidOperationException or ArgumentException or FormatException)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.MalformedCose, "not a COSE_Sign1 message: " + e.Message, null, hash);
        }

        var (deviceId, headerReason, headerDetail) = CheckProtectedHeaders(message.ProtectedHeaders);
        if (headerReason != EvidenceRejection.None)
        {
            return EvidenceVerification.Rejected(headerReason, headerDetail, deviceId, hash);
        }

        if (message.UnprotectedHeaders.ContainsKey(CoseHeaderLabel.Algorithm) || message.UnprotectedHeaders.ContainsKey(CoseHeaderLabel.KeyIdentifier))
        {
            return EvidenceVerification.Rejected(EvidenceRejection.MalformedCose, "alg and kid must only be in the protected header", deviceId, hash);
        }

        if (message.Content is not { } content)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.MalformedCose, "detached payloads are not accepted", deviceId, hash);
        }

        var key = keyForDevice(deviceId!);
        if (key is null)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.UnknownKey, $"no enrolled key for device '{deviceId}'", deviceId, hash);
        }

        bool signatureValid;
        try
        {
            signatureValid = message.VerifyEmbedded(key);
        }
        catch (Exception e) when (e is CryptographicException or InvalidOperationException or ArgumentException)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.BadSignature, "signature could not be checked: " + e.Message, deviceId, hash);
        }

        if (!signatureValid)
        {
            return EvidenceVerification.Rejected(EvidenceRejection.BadSignature, $"ES256 signature does not verify under the key of '{deviceId}'", deviceId, hash);
        }

        var (record, reason, detail) = EvidencePayload.Decode(content, limits);
        if (record is null)
        {
            return EvidenceVerification.Rejected(reason, detail, deviceId, hash);
        }

        if (!string.Equals(record.DeviceId, deviceId, StringComparison.Ordinal))
        {
            return EvidenceVerification.Rejected(EvidenceRejection.DeviceMismatch, $"payload names device '{record.DeviceId}' but kid is '{deviceId}'", deviceId, hash);
        }

        return EvidenceVerification.Valid(record, hash);
    }

    /// <summary>Reads the kid without verifying anything (e.g. to route or count). Null when absent or invalid.</summary>
    public static string? PeekDeviceId(ReadOnlySpan<byte> cose)
    {
        try
        {
            var message = CoseMessage.DecodeSign1(cose);
            return CheckProtectedHeaders(message.ProtectedHeaders).DeviceId;
        }
        catch (Exception e) when (e is CryptographicException or CborContentException or InvalidOperationException or ArgumentException or FormatException)
        {
            return null;
        }
    }

    private static (string? DeviceId, EvidenceRejection Reason, string Detail) CheckProtectedHeaders(CoseHeaderMap headers)
    {
        string? deviceId = null;
        if (TryGet(headers, CoseHeaderLabel.KeyIdentifier, v => StrictUtf8.GetString(v.GetValueAsBytes()), out var id) && Identifier.IsValid(id))
        {
            deviceId = id;
        }

        if (!TryGet(headers, CoseHeaderLabel.Algorithm, v => v.GetValueAsInt32(), out var algorithm))
        {
            return (deviceId, EvidenceRejection.WrongAlgorithm, "no integer alg in the protected header");
        }

        if (algorithm != EvidenceFormat.AlgorithmEs256)
        {
            return (deviceId, EvidenceRejection.WrongAlgorithm, $"alg {algorithm}, only ES256 (-7) is accepted");
        }

        if (deviceId is null)
        {
            return (null, EvidenceRejection.MissingKeyId, "no valid device id in the protected kid");
        }

        if (!TryGet(headers, CoseHeaderLabel.ContentType, v => v.GetValueAsString(), out var contentType)
            || contentType != EvidenceFormat.PayloadContentType)
        {
            return (deviceId, EvidenceRejection.MalformedCose, $"content type is not {EvidenceFormat.PayloadContentType}");
        }

        if (headers.Count != 3)
        {
            // Only alg, kid and content type are defined; anything else (e.g. crit, RFC 9052 §3.1) is refused.
            return (deviceId, EvidenceRejection.MalformedCose, $"{headers.Count - 3} unexpected protected header(s)");
        }

        return (deviceId, EvidenceRejection.None, string.Empty);
    }

    private static bool TryGet<T>(CoseHeaderMap headers, CoseHeaderLabel label, Func<CoseHeaderValue, T> read, out T value)
    {
        value = default!;
        if (!headers.TryGetValue(label, out var raw))
        {
            return false;
        }

        try
        {
            value = read(raw);
            return true;
        }
        catch (Exception e) when (e is InvalidOperationException or CborContentException or ArgumentException or OverflowException or FormatException)
        {
            // GetValueAs* throw when a header value has another CBOR type; strict UTF-8 throws on bad bytes.
            return false;
        }
    }
}
