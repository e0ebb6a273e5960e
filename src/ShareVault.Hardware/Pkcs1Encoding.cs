using System.Security.Cryptography;

namespace ShareVault.Hardware;

/// <summary>EMSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §9.2).</summary>
public static class Pkcs1Encoding
{
    // DigestInfo DER prefix for SHA-256, RFC 8017 §9.2 note 1.
    private static readonly byte[] Sha256DigestInfo =
        [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

    /// <summary>EM = 0x00 || 0x01 || PS (0xFF…) || 0x00 || DigestInfo(SHA-256(message)), exactly k bytes.</summary>
    public static byte[] EncodeSha256(ReadOnlySpan<byte> message, int k)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(message, hash);
        return EncodeSha256Digest(hash, k);
    }

    public static byte[] EncodeSha256Digest(ReadOnlySpan<byte> sha256, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(sha256.Length, 32);
        var tLen = Sha256DigestInfo.Length + sha256.Length;
        if (k < tLen + 11)
        {
            throw new ArgumentOutOfRangeException(nameof(k), "Intended encoded message length too short");
        }

        var em = new byte[k];
        em[1] = 0x01;
        em.AsSpan(2, k - tLen - 3).Fill(0xFF);
        Sha256DigestInfo.CopyTo(em, k - tLen);
        sha256.CopyTo(em.AsSpan(k - sha256.Length));
        return em;
    }
}
