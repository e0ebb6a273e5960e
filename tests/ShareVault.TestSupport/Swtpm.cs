using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ShareVault.TestSupport;

/// <summary>
/// A real swtpm (TPM 2.0 simulator) on a free loopback port, with its state in a temporary folder.
/// Each test class gets its own (swtpm serves one client at a time and holds 3 loaded objects):
/// use it as an <c>IClassFixture&lt;Swtpm&gt;</c>. Stopped by PID on dispose.
/// </summary>
public sealed partial class Swtpm : IDisposable
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly Process _process;

    public Swtpm()
    {
        StateDir = Path.Combine(Path.GetTempPath(), $"sharevault-swtpm-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(StateDir);
        for (var attempt = 0; ; attempt++)
        {
            Port = FreePortPair();
            var start = new ProcessStartInfo("swtpm") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[]
            {
                "socket", "--tpm2",
                "--server", $"type=tcp,port={Port},bindaddr=127.0.0.1",
                "--ctrl", $"type=tcp,port={Port + 1},bindaddr=127.0.0.1",
                "--tpmstate", $"dir={StateDir}",
                "--flags", "not-need-init,startup-clear",
            })
            {
                start.ArgumentList.Add(argument);
            }

            var process = Process.Start(start)!;
            if (WaitForPort(Port + 1, process, TimeSpan.FromSeconds(10)))
            {
                _process = process;
                break;
            }

            var stderr = process.HasExited ? process.StandardError.ReadToEnd() : "(still running)";
            StopProcess(process);
            if (attempt >= 4)
            {
                throw new InvalidOperationException($"swtpm did not start on port {Port}: {stderr}");
            }
        }

        PinDir = Path.Combine(StateDir, "pins");
        Directory.CreateDirectory(PinDir);
    }

    public int Port { get; private set; }

    public int Pid => _process.Id;

    public string StateDir { get; }

    public string PinDir { get; }

    /// <summary>The tpm2-tss TCTI string for this instance.</summary>
    public string Tcti => $"swtpm:host=127.0.0.1,port={Port}";

    /// <summary>Writes an auth value to a pin file and returns its path.</summary>
    public string PinFile(string name, string value)
    {
        var path = Path.Combine(PinDir, name + ".pin");
        File.WriteAllText(path, value + "\n");
        return path;
    }

    /// <summary>A TPM custodian URI for this instance, with an auth value in a pin file.</summary>
    public string Uri(string objectName, string auth = "tpm-auth-1234", string? timeoutSeconds = null) =>
        $"tpm:object={objectName}?tcti={Tcti}&pin-source=file:{PinFile(objectName, auth)}"
        + (timeoutSeconds is null ? string.Empty : "&timeout=" + timeoutSeconds);

    public bool IsRunning => !_process.HasExited;

    /// <summary>Kills swtpm (SIGKILL) now, as a crashed or unplugged TPM.</summary>
    public void Stop() => StopProcess(_process);

    /// <summary>Freezes swtpm (SIGSTOP): connections stay open but nothing answers.</summary>
    public void Freeze() => Signal(SigStop);

    public void Thaw() => Signal(SigCont);

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Signal(SigCont);
        }

        StopProcess(_process);
        _process.Dispose();
        try
        {
            Directory.Delete(StateDir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the temp cleaner.
        }
    }

    private void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
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

    private static int FreePortPair()
    {
        for (var i = 0; i < 50; i++)
        {
            using var first = new TcpListener(IPAddress.Loopback, 0);
            first.Start();
            var port = ((IPEndPoint)first.LocalEndpoint).Port;
            if (port >= 65535)
            {
                continue;
            }

            try
            {
                using var second = new TcpListener(IPAddress.Loopback, port + 1);
                second.Start();
                second.Stop();
                return port;
            }
            catch (SocketException)
            {
                // port + 1 is taken; try another pair.
            }
        }

        throw new InvalidOperationException("No free pair of loopback ports for swtpm");
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
                return true;
            }
            catch (SocketException)
            {
                Thread.Sleep(10);
            }
        }

        return false;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
