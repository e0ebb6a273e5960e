namespace ShareVault.TestSupport;

/// <summary>The repository root, found by walking up from the test binaries to ShareVault.sln.</summary>
public static class RepoRoot
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ShareVault.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("ShareVault.sln not found above " + AppContext.BaseDirectory);
    });

    public static string Path => Root.Value;
}
