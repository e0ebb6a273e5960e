namespace ShareVault.Evidence;

/// <summary>Version of the evidence payload format this library writes.</summary>
public static class EvidenceFormat
{
    public const int Version = 1;
}
