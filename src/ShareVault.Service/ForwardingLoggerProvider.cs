using Microsoft.Extensions.Logging;

namespace ShareVault.Service;

/// <summary>
/// Hands an ASP.NET host's loggers to a factory its caller owns (the CLI's console, a test's collector),
/// so the host's own filters still apply and disposing the host does not dispose the caller's factory.
/// </summary>
public sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

    public void Dispose()
    {
        // The factory belongs to the caller.
    }
}
