namespace ShareVault.Hardware.Tpm;

/// <summary>
/// Where a TPM object's blobs live: <c>DATA_DIR/tpm/OBJECT/LABEL.pub</c> (TPM2B_PUBLIC) and
/// <c>LABEL.priv</c> (TPM2B_PRIVATE, encrypted and integrity-protected by the storage primary:
/// useless outside the TPM that made it, Part 1 §22.4). Blobs are written atomically and fsynced
/// (<see cref="DurableFile"/>): a key whose blobs vanished in a power cut is a key lost.
/// </summary>
internal sealed class TpmKeyBlobs
{
    public TpmKeyBlobs(string dataDir, string objectName)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDir);
        TpmUri.ValidateName(objectName, "object");
        Folder = Path.Combine(dataDir, "tpm", objectName);
    }

    public string Folder { get; }

    public bool Exists(string label) => File.Exists(PublicPath(label)) && File.Exists(PrivatePath(label));

    public (byte[] Private, byte[] Public)? TryRead(string label)
    {
        if (!Exists(label))
        {
            return null;
        }

        return (File.ReadAllBytes(PrivatePath(label)), File.ReadAllBytes(PublicPath(label)));
    }

    public byte[]? TryReadPublic(string label) => File.Exists(PublicPath(label)) ? File.ReadAllBytes(PublicPath(label)) : null;

    public void Write(string label, byte[] privateBlob, byte[] publicBlob)
    {
        DurableFile.CreateDirectory(Folder);
        DurableFile.WriteAtomic(PrivatePath(label), privateBlob);
        DurableFile.WriteAtomic(PublicPath(label), publicBlob);
    }

    public void Delete(string label)
    {
        File.Delete(PrivatePath(label));
        File.Delete(PublicPath(label));
    }

    public IEnumerable<string> Labels() => Directory.Exists(Folder)
        ? Directory.EnumerateFiles(Folder, "*.pub").Select(Path.GetFileNameWithoutExtension).OfType<string>().Where(Exists).Order(StringComparer.Ordinal)
        : [];

    private string PublicPath(string label)
    {
        TpmUri.ValidateName(label, "key label");
        return Path.Combine(Folder, label + ".pub");
    }

    private string PrivatePath(string label)
    {
        TpmUri.ValidateName(label, "key label");
        return Path.Combine(Folder, label + ".priv");
    }
}
