using System.CommandLine;
using Microsoft.Extensions.Logging;
using ShareVault.Service;

namespace ShareVault.Cli;

/// <summary>Options shared by every verb, and the one place CLI failures become a one-line reason and an exit code.</summary>
public static class CliContext
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Invalid = 2;

    /// <summary>sysexits.h EX_SOFTWARE: an internal error (a bug), not a failure of the request or the machine.</summary>
    public const int Bug = 70;

    public static readonly Option<string> DataDir = new("--data-dir")
    {
        Description = "Folder holding key metadata (public parts only) and service state",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SHAREVAULT_DATA_DIR") ?? "./.sharevault",
        Recursive = true,
    };

    /// <summary>
    /// The CLI's logs: console, one line per entry, all on stderr (stdout stays the lines scripts read:
    /// addresses, ids, JSON), structured (message templates), information and up (ASP.NET's own request
    /// lines only from warnings, since a request line carries its query). Messages name ids, codes and
    /// reasons, never a PIN, a share, a key or an evidence payload.
    /// </summary>
    public static ILoggerFactory Logging { get; } = LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Information)
        .AddFilter("Microsoft.AspNetCore", LogLevel.Warning)
        .AddFilter("Microsoft.Hosting", LogLevel.Warning)
        .AddSimpleConsole(c =>
        {
            c.SingleLine = true;
            c.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            c.UseUtcTimestamp = true;
        })
        .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));

    /// <summary>
    /// Runs a verb: an expected failure (<see cref="CommandFailures.IsExpected"/>) prints "sharevault: reason"
    /// on stderr and returns <see cref="Failed"/>; anything else is a bug, logged with its exception, <see cref="Bug"/>.
    /// </summary>
    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (CommandFailures.IsExpected(e))
        {
            await Console.Error.WriteLineAsync("sharevault: " + e.Message).ConfigureAwait(false);
            return Failed;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Logging.CreateLogger("sharevault").LogCritical(e, "sharevault failed unexpectedly (a bug; please report it with this log)");
            return Bug;
        }
    }

    public static Task<int> RunAsync(Func<int> action) => RunAsync(() => Task.FromResult(action()));

    public static string ReadableDataDir(ParseResult result) => Path.GetFullPath(result.GetValue(DataDir)!);
}
