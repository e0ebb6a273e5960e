using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Text;

namespace ShareVault.Evidence;

/// <summary>
/// Signs evidence as a tagged COSE_Sign1 (RFC 9052 §4.2) with ES256 (RFC 9053 §2.1). The protected
/// header carries alg = -7, kid = the device id's UTF-8 bytes and the content type; the unprotected
/// header is empty. Works with any <see cref="ECDsa"/> over P-256, including hardware keys wrapped
/// as an ECDsa (ShareVault.Hardware.HardwareECDsa).
/// </summary>
public static class EvidenceSigner
{
    /// <summary>Encodes and signs a record; returns the COSE_Sign1 bytes.</summary>
    public static byte[] Sign(EvidenceRecord record, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(record);
        return SignPayload(EvidencePayload.Encode(record), record.DeviceId, key);
    }

    /// <summary>
    /// Signs arbitrary payload bytes under a device id. For tests and tools that must produce
    /// records this library would not write (other versions, malformed payloads).
    /// </summary>
    public static byte[] SignPayload(ReadOnlySpan<byte> payload, string deviceId, ECDsa key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!Identifier.IsValid(deviceId))
        {
            throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
        }

        if (key.KeySize != 256)
        {
            throw new ArgumentException($"Evidence is signed with ES256, which needs a P-256 key, not a {key.KeySize}-bit one", nameof(key));
        }

        // CoseSigner puts alg (-7 for ECDsa with SHA-256) first; the map is written in insertion
        // order, so content type (3) before kid (4) keeps the header in RFC 8949 §4.2.1 key order.
        var protectedHeaders = new CoseHeaderMap
        {
            { CoseHeaderLabel.ContentType, EvidenceFormat.PayloadContentType },
            { CoseHeaderLabel.KeyIdentifier, Encoding.UTF8.GetBytes(deviceId) },
        };

        var signer = new CoseSigner(key, HashAlgorithmName.SHA256, protectedHeaders);
        return CoseSign1Message.SignEmbedded(payload.ToArray(), signer);
    }
}
