using ShareVault.Hardware.Tpm;


namespace ShareVault.TestSupport;

/// <summary>
/// A real swtpm (TPM 2.0 simulator) on a free loopback port, with its state in a temporary folder.
/// Each test class gets its own (swtpm serves one client at a time and holds 3 loaded objects):
/// use it as an <c>IClassFixture&lt;Swtpm&gt;</c>. The process is <see cref="SwtpmProcess"/>, the same
/// launcher the demo uses; stopped by PID on dispose, and its state folder deleted.
/// </summary>
public sealed class Swtpm : IDisposable
{
    private readonly SwtpmProcess _process;

    public Swtpm()
    {
        StateDir = Path.Combine(Path.GetTempPath(), $"sharevault-swtpm-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(StateDir);
        _process = SwtpmProcess.StartOnFreePort(StateDir, TimeSpan.FromSeconds(10));
        PinDir = Path.Combine(StateDir, "pins");
        Directory.CreateDirectory(PinDir);
    }

    public int Port => _process.Port;

    public int Pid => _process.Pid;

    public string StateDir { get; }

    public string PinDir { get; }

    /// <summary>The tpm2-tss TCTI string for this instance.</summary>
    public string Tcti => _process.Tcti;

    /// <summary>Writes an auth value to a pin file and returns its path.</summary>
    public string PinFile(string name, string value)
    {
        var path = Path.Combine(PinDir, name + ".pin");
        File.WriteAllText(path, value + "\n");
        return path;
    }

    /// <summary>
    /// A TPM custodian URI for this instance, with an auth value in a pin file. Its command watchdog
    /// is 60 s unless a test sets one: on a loaded 2-core machine one swtpm command was seen to take
    /// longer than the product's 10 s default (a clean-clone run next to five builds, load average 30),
    /// and only the tests of the watchdog itself (TpmFailureTests) want it to fire.
    /// </summary>
    public string Uri(string objectName, string auth = "tpm-auth-1234", string timeoutSeconds = "60") =>
        $"tpm:object={objectName}?tcti={Tcti}&pin-source=file:{PinFile(objectName, auth)}&timeout={timeoutSeconds}";

    public bool IsRunning => _process.IsRunning;

    /// <summary>Kills swtpm (SIGKILL) now, as a crashed or unplugged TPM.</summary>
    public void Stop() => _process.Kill();

    /// <summary>Freezes swtpm (SIGSTOP): connections stay open but nothing answers.</summary>
    public void Freeze() => _process.Freeze();

    public void Thaw() => _process.Thaw();

    public void Dispose()
    {
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
}
