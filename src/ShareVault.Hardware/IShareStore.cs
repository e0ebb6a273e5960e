
namespace ShareVault.Hardware;

/// <summary>
/// One custodian's hardware (a PKCS#11 token or a TPM). Keys are born inside it and every private
/// operation happens inside it; nothing private ever crosses this seam.
/// Implementations are safe to call from several threads at once.
/// </summary>
public interface IShareStore : IDisposable
{
    /// <summary>The custodian's name: the token label, or the TPM object name.</summary>
    string CustodianName { get; }

    /// <summary>Generates an RSA key inside the hardware (non-extractable, raw RSA private operation allowed).</summary>
    RsaPublicKey GenerateRsaKey(string objectLabel, int bits);

    /// <summary>Public part of an existing key. Throws <see cref="ShareStoreException"/> with <see cref="ShareStoreError.KeyNotFound"/>.</summary>
    RsaPublicKey GetRsaPublicKey(string objectLabel);

    /// <summary>
    /// Raw RSA private operation (m^d mod n) computed inside the hardware. <paramref name="input"/> is
    /// big-endian and exactly the modulus length; the result has the same length.
    /// </summary>
    byte[] RsaRawPrivate(string objectLabel, ReadOnlySpan<byte> input);

    /// <summary>Removes a key from the hardware (used when a ceremony is abandoned). No error if absent.</summary>
    void DeleteKey(string objectLabel);

    /// <summary>Lists the labels of the ShareVault objects this custodian holds, with their kind.</summary>
    IReadOnlyList<StoredObject> ListObjects();
}

/// <summary>A key or share object as seen from outside the hardware: its label and kind, never its value.</summary>
public sealed record StoredObject(string Label, string Kind);
