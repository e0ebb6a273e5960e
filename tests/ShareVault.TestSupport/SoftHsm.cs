using System.Diagnostics;
using ShareVault.Hardware;

namespace ShareVault.TestSupport;

/// <summary>
/// Real SoftHSM2 tokens for a test process, created with the project's own
/// <c>softhsm-config/create-tokens.sh</c> in a throwaway folder. SoftHSM reads its token folder
/// once, when the module is initialised, so every token a test process may use is created here,
/// before the first test opens the module.
/// </summary>
public sealed class SoftHsm
{
    public const string ModulePath = "/usr/lib/softhsm/libsofthsm2.so";

    /// <summary>
    /// Tokens shared by tests (objects inside them get unique labels per test). A token is never used
    /// by two processes at once: SoftHSM 2.6's file store rewrites a token's files unlocked (a login
    /// truncates token.object, unlocks, then writes it; fixed upstream after 2.6.1 by SoftHSMv2 PRs
    /// #576 and #578), so a process reading a token while another writes it sees it empty or
    /// half-made and fails (CKR_GENERAL_ERROR from C_Sign, C_GenerateKeyPair, C_GetTokenInfo). So the
    /// tokens that test classes' child processes use belong to that class (or collection) alone, and
    /// it does not use them in this process while its children run: pool-* to the pool key group
    /// (whose service processes sign with them), cli-a..c to ProductRsaCliTests and the mixed-quorum
    /// CLI test (another test process), cli-d..f to the Shoup CLI ceremony. device-hsm is used by
    /// the pool key group alone in ShareVault.Tests (its agent processes). The other tokens are used
    /// in this process only.
    /// </summary>
    public static readonly IReadOnlyList<string> Labels =
    [
        "custody-a", "custody-b", "custody-c", "custody-d", "custody-e", "custody-f",
        "device-hsm", "spare-1", "spare-2", "spare-3", "spare-4",
        "pool-a", "pool-b", "pool-c", "cli-a", "cli-b", "cli-c", "cli-d", "cli-e", "cli-f",
        // The Shoup probe test's alone: it checks that no probe object is left on them.
        "ceremony-a", "ceremony-b",
        // The tampered-partial test's alone: it replaces a key while other classes sign on theirs.
        "tamper-a", "tamper-b", "tamper-c",
        // The dispose-race test's alone: it keeps a session signing while its store is forgotten.
        "dispose-race",
        // Custody node processes' (ShareVault.Node.Tests): node-a/b to the three-node class, node-d/e to the node-failure class.
        "node-a", "node-b", "node-d", "node-e",
        // The malicious-coordinator class's guarded nodes (--admin-key, no raw signing): its own, as their replicas and audit logs are asserted on.
        "node-g", "node-h",
        // The settlement-through-nodes class's guarded nodes (with an anvil): its own, as their audit logs are asserted on.
        "node-s", "node-r",
        // Never logged in by any other test: login state is per process and token, so a wrong PIN
        // is only detectable on a token nobody in this process has opened.
        "wrong-pin-probe",
        // The admin CLI test's alone: its child processes create and use the pool administrator's key.
        "admin-a",
        // The chain (PoolTreasury) tests' pool keys (chain-a..c product RSA, chain-d..f Shoup), used in their process only.
        "chain-a", "chain-b", "chain-c", "chain-d", "chain-e", "chain-f",
    ];

    private static readonly Lazy<SoftHsm> Instance = new(() => new SoftHsm());

    private SoftHsm()
    {
        Directory = Path.Combine(Path.GetTempPath(), $"sharevault-tests-{Environment.ProcessId}-{Guid.NewGuid():N}"[..48], "hsm");
        var script = Path.Combine(RepoRoot.Path, "softhsm-config", "create-tokens.sh");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(Directory);
        foreach (var label in Labels)
        {
            start.ArgumentList.Add(label);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"create-tokens.sh failed ({process.ExitCode}): {stderr.Result}");
        }

        ConfPath = Path.Combine(Directory, "softhsm2.conf");
        NativeEnvironment.Set("SOFTHSM2_CONF", ConfPath);
    }

    public static SoftHsm Shared => Instance.Value;

    public string Directory { get; }

    public string ConfPath { get; }

    public string PinFile(string token) => Path.Combine(Directory, "pins", token + ".pin");

    /// <summary>A custodian URI (RFC 7512) for a token, optionally naming an object.</summary>
    public string Uri(string token, string? objectLabel = null) =>
        $"pkcs11:token={token}{(objectLabel is null ? string.Empty : ";object=" + objectLabel)}?module-path={ModulePath}&pin-source=file:{PinFile(token)}";
}
