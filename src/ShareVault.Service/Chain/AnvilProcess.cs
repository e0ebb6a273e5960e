using System.Diagnostics;
using ShareVault.Hardware;

namespace ShareVault.Service.Chain;

/// <summary>
/// anvil (Foundry's Ethereum dev node, npm <c>@foundry-rs/anvil-linux-amd64</c>, pinned in
/// contracts/package-lock.json) on a loopback port: the dev chain of the demo, the tests and the
/// benchmark. Ready when it prints "Listening on"; killed (and waited for) on <see cref="Dispose"/>.
/// The default hardfork is anvil's newest (the current mainnet gas schedule, with EIP-7883's modexp
/// pricing); <c>prague</c> gives the older one. Never for real funds: its accounts' keys are public.
/// </summary>
public sealed class AnvilProcess : IDisposable
{
    /// <summary>
    /// anvil's first dev account (from its public default mnemonic "test test … junk"): funded with
    /// ETH on every dev chain. Public knowledge, so never a secret.
    /// </summary>
    public const string DevAccountKey = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    /// <summary>Further dev accounts (indices 1–4 of the same mnemonic): members in the demo and tests.</summary>
    public static readonly IReadOnlyList<string> MemberAccountKeys =
    [
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926e",
    ];

    public const long DevChainId = 31337;

    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();
    private readonly Lock _gate = new();

    private AnvilProcess(Process process, int port, string? hardfork)
    {
        _process = process;
        Port = port;
        Hardfork = hardfork;
    }

    public int Port { get; }

    /// <summary>The hardfork asked for; null for anvil's default (the newest).</summary>
    public string? Hardfork { get; }

    public int Pid => _process.Id;

    public string RpcUrl => $"http://127.0.0.1:{Port}";

    /// <summary>
    /// The anvil binary: <c>SHAREVAULT_ANVIL</c>, else contracts/node_modules/… found above the
    /// application folder or the current folder (scripts/install-deps.sh installs it there), else
    /// <c>anvil</c> on PATH.
    /// </summary>
    public static string FindBinary()
    {
        if (Environment.GetEnvironmentVariable("SHAREVAULT_ANVIL") is { Length: > 0 } configured)
        {
            return configured;
        }

        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "contracts", "node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return "anvil";
    }

    /// <summary>Starts anvil on a port from <see cref="LoopbackPorts"/> and waits until it listens.</summary>
    public static AnvilProcess Start(string? hardfork = null, TimeSpan? timeout = null, int attempts = 3, params string[] extraArguments)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return Start(LoopbackPorts.Reserve(), hardfork, timeout ?? TimeSpan.FromSeconds(30), extraArguments);
            }
            catch (InvalidOperationException) when (attempt < attempts)
            {
                // The port was taken between the reservation's bind check and anvil's bind: next one.
            }
        }
    }

    /// <summary>Starts anvil on <paramref name="port"/>; <paramref name="extraArguments"/> go to anvil as they are (e.g. <c>--steps-tracing</c>).</summary>
    public static AnvilProcess Start(int port, string? hardfork, TimeSpan timeout, params string[] extraArguments)
    {
        var start = new ProcessStartInfo(FindBinary())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] arguments = ["--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--chain-id", DevChainId.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        foreach (var argument in (hardfork is null ? arguments : [.. arguments, "--hardfork", hardfork]).Concat(extraArguments))
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var anvil = new AnvilProcess(process, port, hardfork);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            anvil.Remember(e.Data);
            if (e.Data.StartsWith("Listening on", StringComparison.Ordinal))
            {
                listening.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                anvil.Remember(e.Data);
            }
        };
        process.Exited += (_, _) => listening.TrySetResult();
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new InvalidOperationException($"anvil could not be run ({e.Message}): scripts/install-deps.sh installs it into contracts/node_modules", e);
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (listening.Task.Wait(timeout) && !process.HasExited)
        {
            return anvil;
        }

        var output = anvil.RecentOutput;
        anvil.Dispose();
        throw new InvalidOperationException($"anvil did not start on 127.0.0.1:{port}: {output}");
    }

    /// <summary>anvil's last output lines, for error messages (it prints nothing secret).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_gate)
            {
                return string.Join('\n', _lastLines);
            }
        }
    }

    private void Remember(string line)
    {
        lock (_gate)
        {
            _lastLines.Enqueue(line);
            while (_lastLines.Count > 40)
            {
                _lastLines.Dequeue();
            }
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }

        _process.Dispose();
    }
}
