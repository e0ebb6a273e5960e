using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A swtpm (TPM 2.0 simulator, swtpm(8)) serving TPM commands on a loopback TCP port and its control
/// channel on the next port, with its state in a folder. swtpm serves one command client at a time.
/// Started with <c>not-need-init,startup-clear</c> so it answers at once (TPM 2.0 Part 3 §9.3
/// TPM2_Startup(TPM_SU_CLEAR) is done for us). Stopped by PID on <see cref="Dispose"/>.
/// </summary>
public sealed partial class SwtpmProcess : IDisposable
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly Process _process;

    private SwtpmProcess(Process process, string stateDir, int port)
    {
        _process = process;
        StateDir = stateDir;
        Port = port;
    }

    /// <summary>The command port; the control port is <c>Port + 1</c>.</summary>
    public int Port { get; }

    public int Pid => _process.Id;

    public string StateDir { get; }

    /// <summary>The tpm2-tss TCTI string for this instance.</summary>
    public string Tcti => TctiFor(Port);

    public bool IsRunning => !_process.HasExited;

    public static string TctiFor(int port) => $"swtpm:host=127.0.0.1,port={port}";

    /// <summary>
    /// Starts swtpm on <paramref name="port"/> and <paramref name="port"/> + 1 and waits until its control port answers.
    /// Throws <see cref="InvalidOperationException"/> (with swtpm's own error output) when it does not start.
    /// </summary>
    public static SwtpmProcess Start(string stateDir, int port, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(stateDir);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65534);
        Directory.CreateDirectory(stateDir);
        var start = new ProcessStartInfo("swtpm") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
        {
            "socket", "--tpm2",
            "--server", $"type=tcp,port={port},bindaddr=127.0.0.1",
            "--ctrl", $"type=tcp,port={port + 1},bindaddr=127.0.0.1",
            "--tpmstate", $"dir={stateDir}",
            "--flags", "not-need-init,startup-clear",
        })
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException("swtpm did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"swtpm could not be run ({e.Message}): install it (scripts/install-deps.sh installs swtpm)", e);
        }

        if (WaitForPort(port + 1, process, timeout))
        {
            return new SwtpmProcess(process, stateDir, port);
        }

        var stderr = process.HasExited ? process.StandardError.ReadToEnd().Trim() : "(still running, control port not answering)";
        StopProcess(process);
        process.Dispose();
        throw new InvalidOperationException($"swtpm did not start on 127.0.0.1 ports {port}/{port + 1}: {stderr}");
    }

    private static readonly Lock StartGate = new();

    /// <summary>Starts swtpm on a free port pair, trying a few pairs in case another process takes one first.</summary>
    public static SwtpmProcess StartOnFreePort(string stateDir, TimeSpan timeout, int attempts = 5)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                // Pick-and-start under one lock, so parallel callers in this process never pick the same pair.
                lock (StartGate)
                {
                    return Start(stateDir, FreePortPair(), timeout);
                }
            }
            catch (InvalidOperationException) when (attempt < attempts)
            {
                // The pair was taken between the probe and swtpm's bind: try another.
            }
        }
    }

    /// <summary>
    /// A loopback port P such that P and P + 1 are free now and reserved for this process, below the
    /// ephemeral range so no outgoing connection takes either before swtpm binds them (<see cref="LoopbackPorts"/>).
    /// </summary>
    public static int FreePortPair() => LoopbackPorts.ReservePair();

    /// <summary>
    /// Reserves <paramref name="port"/> and <paramref name="port"/> + 1 for this process (<see cref="LoopbackPorts.TryReserve"/>);
    /// false when another process holds or listens on either.
    /// </summary>
    public static bool TryReservePortPair(int port) => port is > 0 and < 65535 && LoopbackPorts.TryReserve(port, 2);

    /// <summary>
    /// Sends TPM2_Shutdown(TPM_SU_CLEAR) (TPM 2.0 Part 3 §9.4) on the command port, so the next start
    /// is orderly. A TPM started after a disorderly stop (SIGKILL, power loss) counts the first use of
    /// a dictionary-attack-protected key as a failed try (Part 1 §19.8.6); swtpm's default of three
    /// tries then locks a state folder that is restarted again and again (the demo's) out with
    /// TPM_RC_LOCKOUT. Call it when no client is connected (swtpm serves one at a time); false when
    /// the TPM did not answer TPM_RC_SUCCESS within <paramref name="timeout"/>.
    /// </summary>
    public bool ShutDownOrderly(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return false;
        }

        // tag TPM_ST_NO_SESSIONS, size 12, TPM_CC_Shutdown, TPM_SU_CLEAR.
        byte[] command = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0];
        try
        {
            using var client = new TcpClient();
            using var cancel = new CancellationTokenSource(timeout);
            client.ConnectAsync(IPAddress.Loopback, Port, cancel.Token).AsTask().GetAwaiter().GetResult();
            using var stream = client.GetStream();
            stream.WriteAsync(command, cancel.Token).AsTask().GetAwaiter().GetResult();
            var response = new byte[10];
            stream.ReadExactlyAsync(response, cancel.Token).AsTask().GetAwaiter().GetResult();
            return response.AsSpan(6, 4).SequenceEqual(new byte[4]);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Kills swtpm (SIGKILL) now, as a crashed or unplugged TPM.</summary>
    public void Kill() => StopProcess(_process);

    /// <summary>Freezes swtpm (SIGSTOP): connections stay open but nothing answers.</summary>
    public void Freeze() => Signal(SigStop);

    /// <summary>Resumes a frozen swtpm (SIGCONT).</summary>
    public void Thaw() => Signal(SigCont);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            // A frozen process still dies on SIGKILL, but resume it so nothing is left half-stopped.
            _ = SendSignal(_process.Id, SigCont);
        }

        StopProcess(_process);
        _process.Dispose();
    }

    private void Signal(int signal)
    {
        if (SendSignal(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private static void StopProcess(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit(5000);
        }
    }

    // Probe the control port, not the command port: swtpm serves one command client at a time.
    private static bool WaitForPort(int port, Process process, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (process.HasExited)
            {
                return false;
            }

            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Loopback, port);
                // The port may answer for another swtpm that took the same pair first (ours then fails to
                // bind and exits): only a process still alive a moment later is ours.
                Thread.Sleep(50);
                return !process.HasExited;
            }
            catch (SocketException)
            {
                Thread.Sleep(10);
            }
        }

        return false;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
