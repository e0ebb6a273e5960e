using System.CommandLine;
using ShareVault.Claims.Errors;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold;
using ShareVault.Hardware;

namespace ShareVault.Cli;

/// <summary>Options shared by every verb, and the one place CLI failures become a one-line reason and an exit code.</summary>
public static class CliContext
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Invalid = 2;

    public static readonly Option<string> DataDir = new("--data-dir")
    {
        Description = "Folder holding key metadata (public parts only) and service state",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SHAREVAULT_DATA_DIR") ?? "./.sharevault",
        Recursive = true,
    };

    /// <summary>Runs a verb; known failures print "sharevault: reason" on stderr and return <see cref="Failed"/>.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ClaimsException or ShareStoreException or KeyCatalogException or ThresholdSigningException
            or ArgumentException or KeyNotFoundException or System.Data.Common.DbException or IOException or UnauthorizedAccessException or FormatException or InvalidOperationException
            or System.Security.Cryptography.CryptographicException or System.Net.Sockets.SocketException)
        {
            await Console.Error.WriteLineAsync("sharevault: " + e.Message).ConfigureAwait(false);
            return Failed;
        }
    }

    public static Task<int> RunAsync(Func<int> action) => RunAsync(() => Task.FromResult(action()));

    public static string ReadableDataDir(ParseResult result) => Path.GetFullPath(result.GetValue(DataDir)!);
}
