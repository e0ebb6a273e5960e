using System.Diagnostics;
using ShareVault.Hardware;

namespace ShareVault.TestSupport;

/// <summary>
/// A real PostgreSQL server for a test process: a throwaway cluster made with Debian's
/// <c>initdb</c> in a temporary folder, listening on a free loopback port (trust authentication,
/// loopback only), stopped and deleted when the process exits. Each test takes its own database
/// from <see cref="CreateDatabase"/>. PostgreSQL refuses to run as root, so when the tests run as
/// root (CI) the cluster belongs to the <c>postgres</c> user that Debian's package creates.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private static readonly Lazy<PostgresServer> Instance = new(() => new PostgresServer());

    private readonly string _bin;
    private readonly string? _runAs;
    private int _databases;

    private PostgresServer()
    {
        _bin = FindBinaries();
        _runAs = Environment.UserName == "root" ? "postgres" : null;
        RemoveClustersOfEndedProcesses();
        Root = Path.Combine(Path.GetTempPath(), $"sharevault-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(Root);
        DataDir = Path.Combine(Root, "data");
        SocketDir = Path.Combine(Root, "socket");
        Directory.CreateDirectory(SocketDir);
        if (_runAs is not null)
        {
            Run("chown", "-R", _runAs, Root);
        }

        Run(Path.Combine(_bin, "initdb"), "-D", DataDir, "-U", "sharevault", "-A", "trust", "-E", "UTF8", "--no-instructions");
        Exception? last = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            Port = FreePort();
            try
            {
                Run(Path.Combine(_bin, "pg_ctl"), "-D", DataDir, "-l", Path.Combine(Root, "server.log"), "-w", "-t", "60",
                    "-o", $"-p {Port} -k {SocketDir} -c listen_addresses=127.0.0.1 -c max_connections=200", "start");
                AppDomain.CurrentDomain.ProcessExit += (_, _) => Dispose();
                return;
            }
            catch (InvalidOperationException e)
            {
                last = e; // a program that does not reserve its ports may listen there: pick another
            }
        }

        throw new InvalidOperationException("PostgreSQL did not start; see " + Path.Combine(Root, "server.log"), last);
    }

    /// <summary>The server shared by every test of this process (started on first use).</summary>
    public static PostgresServer Shared => Instance.Value;

    public string Root { get; }

    public string DataDir { get; }

    public string SocketDir { get; }

    public int Port { get; private set; }

    /// <summary>Creates an empty database and returns its Npgsql connection string.</summary>
    public string CreateDatabase(string prefix = "sv")
    {
        var name = $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}"[..40].ToLowerInvariant();
        Run(Path.Combine(_bin, "createdb"), "-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "sharevault", name);
        return ConnectionString(name);
    }

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Database={database};Username=sharevault;Pooling=true;Timeout=30;Command Timeout=60";

    public void Dispose()
    {
        if (!Directory.Exists(DataDir))
        {
            return;
        }

        try
        {
            Run(Path.Combine(_bin, "pg_ctl"), "-D", DataDir, "-m", "immediate", "-w", "stop");
        }
        catch (InvalidOperationException)
        {
        }

        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// A test host can end before its exit handler has deleted the cluster folder (or be killed):
    /// remove the folders whose creating process is gone, stopping a server still running from one.
    /// </summary>
    private static void RemoveClustersOfEndedProcesses()
    {
        foreach (var folder in Directory.GetDirectories(Path.GetTempPath(), "sharevault-pg-*"))
        {
            var parts = Path.GetFileName(folder).Split('-');
            if (parts.Length < 4 || !int.TryParse(parts[2], out var owner) || Directory.Exists($"/proc/{owner}"))
            {
                continue;
            }

            try
            {
                var dataDir = Path.Combine(folder, "data");
                var pidFile = Path.Combine(dataDir, "postmaster.pid");
                if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var postmaster) && IsPostmasterOf(postmaster, dataDir))
                {
                    using var server = Process.GetProcessById(postmaster);
                    server.Kill();
                    server.WaitForExit(TimeSpan.FromSeconds(10));
                }

                Directory.Delete(folder, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Another test process may be cleaning it up at the same moment; the next start tries again.
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="pid"/> is the postgres server of <paramref name="dataDir"/>. A stale
    /// postmaster.pid (its server was killed) names a process id the kernel may since have given to
    /// any other process, a test's child or another test host, which must not be killed.
    /// </summary>
    private static bool IsPostmasterOf(int pid, string dataDir)
    {
        try
        {
            var arguments = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            return Path.GetFileName(arguments[0]) == "postgres"
                && arguments.Zip(arguments.Skip(1)).Any(a => a.First == "-D" && a.Second == dataDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false; // gone meanwhile
        }
    }

    /// <summary>The newest server installed (Debian puts each major version under /usr/lib/postgresql/N/bin).</summary>
    private static string FindBinaries()
    {
        var versions = Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql") : [];
        var bin = versions
            .Select(v => (Version: int.TryParse(Path.GetFileName(v), out var n) ? n : 0, Bin: Path.Combine(v, "bin")))
            .Where(v => File.Exists(Path.Combine(v.Bin, "initdb")))
            .OrderByDescending(v => v.Version)
            .Select(v => v.Bin)
            .FirstOrDefault();
        return bin ?? throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql: install them with 'apt-get install postgresql' (scripts/install-deps.sh does)");
    }

    private static int FreePort() => LoopbackPorts.Reserve();

    private void Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(_runAs is not null && file != "chown" ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        if (_runAs is not null && file != "chown")
        {
            start.ArgumentList.Add("-u");
            start.ArgumentList.Add(_runAs);
            start.ArgumentList.Add("--");
            start.ArgumentList.Add(file);
        }

        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{Path.GetFileName(file)} did not finish within 2 minutes");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {stderr.Result.Trim()} {stdout.Result.Trim()}");
        }
    }
}
