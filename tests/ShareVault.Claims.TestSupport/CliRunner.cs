using ShareVault.TestSupport;


namespace ShareVault.Claims.TestSupport;

/// <summary>Runs the real <c>sharevault</c> CLI (the built sharevault.dll beside the tests) as a separate process.</summary>
public static class CliRunner
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "sharevault.dll");

    public static Task<ProcessRunner.Result> RunAsync(string dataDir, params string[] args) =>
        RunAsync(dataDir, TimeSpan.FromMinutes(3), args);

    public static Task<ProcessRunner.Result> RunAsync(string dataDir, TimeSpan timeout, params string[] args) =>
        ProcessRunner.RunAsync("dotnet", [Dll, .. args, "--data-dir", dataDir], timeout,
            new Dictionary<string, string> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });

    public static Task<ProcessRunner.Result> OpenSslAsync(params string[] args) =>
        ProcessRunner.RunAsync("openssl", args, TimeSpan.FromMinutes(1));
}
