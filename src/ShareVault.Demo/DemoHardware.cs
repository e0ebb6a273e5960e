using System.Diagnostics;
using ShareVault.Hardware;
using ShareVault.Hardware.Tpm;

namespace ShareVault.Demo;

/// <summary>
/// The demo's hardware under OUT: SoftHSM tokens made by the project's own token script (PINs in
/// hsm/pins, mode 0600), the swtpm for the TPM custodian (state, port and auth value in tpm/, made
/// once and kept, since the key record's URI names the port), and the URIs that address them.
/// </summary>
internal sealed class DemoHardware(string outDir)
{
    public string HsmDir => Path.Combine(outDir, "hsm");

    private string TpmDir => Path.Combine(outDir, "tpm");

    private string TpmPinFile => Path.Combine(TpmDir, DemoRun.TpmCustodian + ".pin");

    public string CustodianUri(string custodian) => custodian == DemoRun.TpmCustodian
        ? $"tpm:object={DemoRun.TpmCustodian}?tcti={SwtpmProcess.TctiFor(ReadTpmPort())}&pin-source=file:{TpmPinFile}"
        : TokenUri(custodian);

    public string TokenUri(string token) =>
        $"pkcs11:token={token}?module-path={Hardware.Pkcs11.Pkcs11Uri.DefaultModulePath}&pin-source=file:{Path.Combine(HsmDir, "pins", token + ".pin")}";

    public string DeviceKeyUri(string device) =>
        $"pkcs11:token={DemoRun.DeviceToken};object={device}?module-path={Hardware.Pkcs11.Pkcs11Uri.DefaultModulePath}&pin-source=file:{Path.Combine(HsmDir, "pins", DemoRun.DeviceToken + ".pin")}";


    /// <summary>Runs softhsm-config/create-tokens.sh (idempotent) and points SoftHSM at the demo's token folder.</summary>
    public async Task<string> CreateTokensAsync(IReadOnlyList<string> labels, Action<string> report, CancellationToken cancellationToken)
    {
        var script = FindScript() ?? throw new InvalidOperationException("softhsm-config/create-tokens.sh not found: run the demo from the ShareVault repository");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(HsmDir);
        foreach (var label in labels)
        {
            start.ArgumentList.Add(label);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var lines = new List<string>();
        while (await process.StandardOutput.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            report(line);
            lines.Add(line.Replace(HsmDir, "hsm", StringComparison.Ordinal));
        }

        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"create-tokens.sh failed: {(await stderr.ConfigureAwait(false)).Trim()}");
        }

        // SoftHSM reads SOFTHSM2_CONF with getenv when the module loads: set it for native code too.
        NativeEnvironment.Set("SOFTHSM2_CONF", Path.Combine(HsmDir, "softhsm2.conf"));
        return string.Join('\n', lines);
    }

    /// <summary>
    /// Starts swtpm on the demo's TPM state. The key record keeps the custodian URI with its TCTI, so the
    /// port is chosen once (a free pair, stored in tpm/port) and reused; the auth value is random, made once.
    /// </summary>
    public SwtpmProcess StartTpm(Action<string> report)
    {
        Directory.CreateDirectory(TpmDir);
        var portFile = Path.Combine(TpmDir, "port");
        int port;
        if (File.Exists(portFile))
        {
            port = ReadTpmPort();
            if (!SwtpmProcess.TryReservePortPair(port))
            {
                throw new InvalidOperationException(
                    $"the demo's swtpm port {port} (or {port + 1}) on 127.0.0.1 is taken by another process; the pool key names that port, "
                    + "so stop whatever holds it, or run with --fresh to start over on a new port");
            }
        }
        else
        {
            port = SwtpmProcess.FreePortPair();
            File.WriteAllText(portFile, port.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        }

        if (!File.Exists(TpmPinFile))
        {
            // 16 random bytes as 32 hex characters: within the TPM's 32-byte limit for SHA-256 objects (TPM 2.0 Part 1 §19.6.4.3).
            // Mode 0600, set at creation so the auth value is never world-readable.
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using var writer = new StreamWriter(TpmPinFile, System.Text.Encoding.ASCII, options);
            writer.Write(Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
        }

        report($"starting swtpm on 127.0.0.1:{port}");
        return SwtpmProcess.Start(Path.Combine(TpmDir, "state"), port, TimeSpan.FromSeconds(10));
    }

    private int ReadTpmPort()
    {
        var text = File.ReadAllText(Path.Combine(TpmDir, "port")).Trim();
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and < 65535
            ? port
            : throw new InvalidOperationException($"{Path.Combine(TpmDir, "port")} does not hold a port number: run with --fresh");
    }

    private static string? FindScript()
    {
        foreach (var origin in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(origin); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "softhsm-config", "create-tokens.sh");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
