using System.Security.Cryptography;

namespace ShareVault.Hardware;

/// <summary>
/// An ECDSA P-256 signing key held in hardware (TPM or PKCS#11 token): the private part never
/// leaves it. Device agents sign evidence with it.
/// </summary>
public interface IDeviceSigningKey : IDisposable
{
    /// <summary>The key's name (TPM object name or PKCS#11 object label).</summary>
    string Name { get; }

    /// <summary>The public key (curve P-256, Q only).</summary>
    ECParameters PublicKey { get; }

    /// <summary>Signs a SHA-256 digest inside the hardware; returns r‖s, 64 bytes (IEEE P1363, as COSE ES256 wants, RFC 9053 §2.1).</summary>
    byte[] SignHash(ReadOnlySpan<byte> sha256);
}

/// <summary>
/// Presents a hardware key as an <see cref="ECDsa"/>, so APIs that take one (COSE signing in
/// System.Security.Cryptography.Cose, X.509 requests) sign inside the hardware. Export of private
/// parameters is refused.
/// </summary>
public sealed class HardwareECDsa : ECDsa
{
    private readonly IDeviceSigningKey _key;

    public HardwareECDsa(IDeviceSigningKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _key = key;
        KeySizeValue = 256;
        LegalKeySizesValue = [new KeySizes(256, 256, 0)];
    }

    public override byte[] SignHash(byte[] hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        return _key.SignHash(hash);
    }

    public override bool VerifyHash(byte[] hash, byte[] signature)
    {
        using var verifier = ECDsa.Create(_key.PublicKey);
        return verifier.VerifyHash(hash, signature);
    }

    public override ECParameters ExportParameters(bool includePrivateParameters)
    {
        if (includePrivateParameters)
        {
            throw new CryptographicException($"The private part of hardware key '{_key.Name}' cannot be exported");
        }

        return _key.PublicKey;
    }

    public override void ImportParameters(ECParameters parameters) =>
        throw new NotSupportedException("A hardware key cannot be replaced by imported parameters");

    public override void GenerateKey(ECCurve curve) =>
        throw new NotSupportedException("Generate hardware keys through their store");

    protected override byte[] HashData(byte[] data, int offset, int count, HashAlgorithmName hashAlgorithm) =>
        hashAlgorithm == HashAlgorithmName.SHA256
            ? SHA256.HashData(data.AsSpan(offset, count))
            : throw new NotSupportedException("Hardware device keys sign SHA-256 digests only (ES256)");

    protected override byte[] HashData(Stream data, HashAlgorithmName hashAlgorithm) =>
        hashAlgorithm == HashAlgorithmName.SHA256
            ? SHA256.HashData(data)
            : throw new NotSupportedException("Hardware device keys sign SHA-256 digests only (ES256)");
}
