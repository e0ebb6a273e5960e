namespace ShareVault.TestSupport;

/// <summary>A data folder (key blobs) for one test class, deleted afterwards.</summary>
public sealed class TempDataDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sv-tpm-data-").FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
