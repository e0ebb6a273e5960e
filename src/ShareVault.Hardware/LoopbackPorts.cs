using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace ShareVault.Hardware;

/// <summary>
/// Loopback TCP ports for servers that are started on a port chosen in advance (swtpm, the demo's
/// MQTT broker, test servers). A port picked by binding port 0 comes from the kernel's ephemeral
/// range (Linux: net.ipv4.ip_local_port_range, 32768–60999 by default), the same range every
/// outgoing connection's local port is drawn from (connect(2) without bind(2)); so between picking
/// and binding, or while a server restarts on "its" port, any MQTT, Npgsql or HTTP client on the
/// machine may take it. Ports handed out here lie below that range, where connect() never picks a
/// local port, and each is reserved with an exclusive flock(2) on <c>TEMP/sharevault-ports/PORT.lock</c>, held until
/// this process exits (the kernel drops it then, so a crash leaves nothing to clean up): processes
/// using this class at the same time (parallel test assemblies, a demo) never get the same port.
/// A port that some other program listens on fails a bind check and is skipped.
/// </summary>
public static partial class LoopbackPorts
{
    private const int LockExclusive = 2; // LOCK_EX, flock(2)
    private const int WouldBlock = 11; // EWOULDBLOCK (EAGAIN) on Linux, which .NET puts in IOException.HResult
    private const int LockNonBlocking = 4; // LOCK_NB
    private const int CandidateCount = 16384;
    private const int LowestCandidate = 1024; // below are the system ports (RFC 6335 §6)
    private const int FewestCandidates = 1024;

    private static readonly string LockDirectory = Path.Combine(Path.GetTempPath(), "sharevault-ports");
    private static readonly ConcurrentDictionary<int, FileStream> Held = new();
    private static readonly Lazy<(int First, int Last)> Candidates = new(CandidateRange);

    /// <summary>A port reserved for this process until it exits, with nothing listening on it now.</summary>
    public static int Reserve() => ReserveRun(1);

    /// <summary>
    /// A port P such that P and P + 1 are reserved for this process until it exits, with nothing
    /// listening on either now (swtpm's command and control ports).
    /// </summary>
    public static int ReservePair() => ReserveRun(2);

    /// <summary>
    /// Reserves <paramref name="count"/> consecutive ports from <paramref name="port"/> on (a port a
    /// server was started on before and others were told about) for this process until it exits.
    /// False, reserving nothing, when another process (or an earlier call) holds one of them or
    /// something listens on one.
    /// </summary>
    public static bool TryReserve(int port, int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort - count + 1);
        var locks = new List<FileStream>();
        try
        {
            for (var p = port; p < port + count; p++)
            {
                if (Held.ContainsKey(p) || TryLock(p) is not { } held)
                {
                    return false;
                }

                locks.Add(held);
            }

            for (var p = port; p < port + count; p++)
            {
                if (!CanListen(p))
                {
                    return false;
                }
            }

            for (var i = 0; i < locks.Count; i++)
            {
                Held[port + i] = locks[i];
            }

            locks.Clear();
            return true;
        }
        finally
        {
            foreach (var unused in locks)
            {
                unused.Dispose();
            }
        }
    }

    private static int ReserveRun(int count)
    {
        var (first, last) = Candidates.Value;
        var starts = last - first + 2 - count;
        var offset = Random.Shared.Next(starts);
        for (var i = 0; i < starts; i++)
        {
            var port = first + ((offset + i) % starts);
            if (TryReserve(port, count))
            {
                return port;
            }
        }

        throw new InvalidOperationException($"No {count} free consecutive loopback port(s) between {first} and {last}");
    }

    /// <summary>The <see cref="CandidateCount"/> ports just below the ephemeral range (or above it, if it starts too low).</summary>
    private static (int First, int Last) CandidateRange()
    {
        var (low, high) = EphemeralRange();
        if (low - LowestCandidate >= FewestCandidates)
        {
            return (Math.Max(LowestCandidate, low - CandidateCount), low - 1);
        }

        if (IPEndPoint.MaxPort - high >= FewestCandidates)
        {
            return (high + 1, IPEndPoint.MaxPort);
        }

        throw new InvalidOperationException(
            $"The ephemeral port range {low}–{high} leaves no room for servers' ports; narrow net.ipv4.ip_local_port_range");
    }

    private static (int Low, int High) EphemeralRange()
    {
        const string Linux = "/proc/sys/net/ipv4/ip_local_port_range";
        if (File.Exists(Linux))
        {
            var parts = File.ReadAllText(Linux).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var low)
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var high))
            {
                return (low, high);
            }
        }

        return (49152, IPEndPoint.MaxPort); // RFC 6335 §6 dynamic ports: the default elsewhere
    }

    /// <summary>The port's lock file, locked exclusively (and kept open), or null when another holder has it.</summary>
    private static FileStream? TryLock(int port)
    {
        var path = Path.Combine(LockDirectory, port.ToString(CultureInfo.InvariantCulture) + ".lock");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(LockDirectory);
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                return null;
            }
        }

        return TryFlock(path);
    }

    [UnsupportedOSPlatform("windows")]
    private static FileStream? TryFlock(string path)
    {
        CreateSharedDirectory();
        var options = new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.ReadWrite,
            Share = FileShare.ReadWrite, // the lock is the flock below, not .NET's emulation of sharing modes
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite,
        };
        FileStream stream;
        try
        {
            stream = new FileStream(path, options);
        }
        catch (UnauthorizedAccessException)
        {
            return null; // another user's lock file that this user may not open: the port is theirs
        }
        catch (IOException e) when (e.HResult == WouldBlock)
        {
            // .NET takes flock(LOCK_SH | LOCK_NB) when it opens a file shared, so a lock file another
            // process holds fails the open itself with EWOULDBLOCK: the port is taken.
            return null;
        }

        // Lock files are never deleted: unlinking one while another process is about to lock it would
        // let a third lock a new file of the same name, and two processes would hold the port.
        if (Flock(stream.SafeFileHandle, LockExclusive | LockNonBlocking) != 0)
        {
            stream.Dispose();
            return null;
        }

        return stream;
    }

    [UnsupportedOSPlatform("windows")]
    private static void CreateSharedDirectory()
    {
        if (Directory.Exists(LockDirectory))
        {
            return;
        }

        Directory.CreateDirectory(LockDirectory);
        try
        {
            // Like /tmp itself (mode 1777), so processes of every user can reserve ports.
            File.SetUnixFileMode(LockDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute | UnixFileMode.StickyBit);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            // Another user's process created it first.
        }
    }

    private static bool CanListen(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            socket.Listen();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(SafeFileHandle fd, int operation);
}
