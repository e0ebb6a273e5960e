namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A TPM reached by its TCTI string, shared by every store, sealer and device key of the process
/// that names the same TCTI (swtpm serves one client at a time, and one ESYS context per TPM keeps
/// commands serialised), and reconnecting after a failure: when a command found the TPM unreachable
/// the next call opens a fresh ESYS context instead of failing forever. Reference-counted: each
/// <see cref="Acquire"/> is matched by one <see cref="Dispose"/>.
/// </summary>
internal sealed class TpmConnection : IDisposable
{
    private static readonly Dictionary<string, TpmConnection> Shared = new(StringComparer.Ordinal);
    private static readonly Lock SharedGate = new();

    private readonly Lock _gate = new();
    private TpmDevice? _device;
    private int _references;

    static TpmConnection()
    {
        TssNative.QuietLogsUnlessConfigured();
    }

    private TpmConnection(string tcti, TimeSpan commandTimeout)
    {
        Tcti = tcti;
        CommandTimeout = commandTimeout;
    }

    public string Tcti { get; }

    /// <summary>The watchdog limit for one call (connecting included).</summary>
    public TimeSpan CommandTimeout { get; }

    /// <summary>The process-wide connection to the TPM at <paramref name="tcti"/>; connects now, to fail early.</summary>
    public static TpmConnection Acquire(string tcti, TimeSpan commandTimeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(tcti);
        TpmConnection connection;
        lock (SharedGate)
        {
            if (!Shared.TryGetValue(tcti, out connection!))
            {
                connection = new TpmConnection(tcti, commandTimeout);
                Shared[tcti] = connection;
            }

            connection._references++;
        }

        try
        {
            connection.Device(commandTimeout);
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    public T Run<T>(string what, Func<TpmDevice, T> commands, TimeSpan? timeout = null)
    {
        var limit = timeout ?? CommandTimeout;
        var device = Device(limit);
        return device.Run(what, () => commands(device), limit);
    }

    private TpmDevice Device(TimeSpan timeout)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_references <= 0, this);
            if (_device is { IsBroken: false } healthy)
            {
                return healthy;
            }

            _device?.Dispose();
            _device = null;
            _device = TpmDevice.Open(Tcti, timeout);
            return _device;
        }
    }

    public void Dispose()
    {
        lock (SharedGate)
        {
            if (_references <= 0)
            {
                return;
            }

            if (--_references > 0)
            {
                return;
            }

            Shared.Remove(Tcti);
        }

        lock (_gate)
        {
            _device?.Dispose();
            _device = null;
        }
    }
}
