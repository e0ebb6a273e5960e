namespace ShareVault.Hardware;

/// <summary>
/// A custodian's hardware that can hold a Shoup threshold-RSA share (Shoup, "Practical Threshold
/// Signatures", Eurocrypt 2000) and compute its partial xᵢ = z^sᵢ mod N inside the device.
/// The share enters wrapped and never leaves; the partial is public.
/// </summary>
public interface IShoupShareStore : IShareStore
{
    /// <summary>
    /// Imports a share without it crossing the device API in clear: the device makes a transport
    /// key pair and passes its public key to <paramref name="wrap"/>, which returns a fresh AES key
    /// OAEP-wrapped to it and the share (a PKCS#8 DH private key) AES-KWP-wrapped under that key.
    /// The transport key and key-encryption key are destroyed afterwards. A non-persistent share is a
    /// session object (used by the ceremony's probe) and disappears with the session.
    /// </summary>
    void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, bool persistent);

    /// <summary>The partial z^sᵢ mod N, computed inside the device; big-endian.</summary>
    byte[] ShoupPartial(string objectLabel, ReadOnlySpan<byte> z);
}

/// <summary>
/// A share on its way into a device: <see cref="WrappedKek"/> is an AES-256 key under RSA-OAEP
/// (SHA-1, PKCS#11 v2.40 §2.1.8) to the device's transport key, <see cref="WrappedKey"/> the PKCS#8
/// share under AES-KWP (RFC 5649) with that key. Both are ciphertext.
/// </summary>
public sealed record WrappedShare(byte[] WrappedKek, byte[] WrappedKey);
