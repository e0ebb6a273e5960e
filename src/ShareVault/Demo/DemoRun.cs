using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Hardware;
using ShareVault.Keys;
using ShareVault.Threshold;
using ShareVault.Threshold.ProductRsa;

namespace ShareVault.Demo;

/// <summary>
/// The demo's steps, each using the real pieces: SoftHSM tokens made by the project's own
/// token script, keys born inside them, partials computed inside them. Idempotent: a second run
/// reuses the tokens and the pool key; <c>--fresh</c> starts over.
/// </summary>
internal sealed class DemoRun(string outDir, bool fresh, DemoConsole console, TimeProvider time)
{
    public const string PoolKey = "pool-1";
    public static readonly string[] Custodians = ["custody-a", "custody-b", "custody-c"];

    private string HsmDir => Path.Combine(outDir, "hsm");

    private string DataDir => Path.Combine(outDir, "data");

    public async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        console.Title("ShareVault demo");
        if (fresh && Directory.Exists(outDir))
        {
            Directory.Delete(outDir, recursive: true);
        }

        Directory.CreateDirectory(outDir);
        var step = "custody tokens";
        try
        {
            await console.StepAsync("Custody tokens (SoftHSM2, one per custodian)", async report =>
            {
                var created = await CreateTokensAsync(report, cancellationToken).ConfigureAwait(false);
                return (0, created);
            }).ConfigureAwait(false);

            using var stores = new ShareStoreRegistry(DataDir);
            var catalog = new KeyCatalog(DataDir);
            step = "pool key";
            var key = await console.StepAsync("Pool key: 2-of-3 product RSA, each share born inside its token", report =>
            {
                if (catalog.Exists(PoolKey))
                {
                    var existing = catalog.Load(PoolKey);
                    return Task.FromResult((existing, $"reusing '{PoolKey}' ({existing.Quorums.Count} quorum keys)"));
                }

                var record = new ProductRsaCeremony(stores, catalog, time).Create(PoolKey, 2, 2048,
                    [.. Custodians.Select(CustodianUri)], new Cli.SyncProgress(report));
                return Task.FromResult((record, string.Join('\n', record.Quorums.Select(q => $"{q.Kid}: RSA-{ProductRsaKey.CompositeKey(record, q).BitLength}"))));
            }).ConfigureAwait(false);
            var jwks = KeyPublication.ToJwks(KeyPublication.PublicKeys(key));
            await File.WriteAllTextAsync(Path.Combine(outDir, "jwks.json"), jwks.ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);

            step = "payout";
            await console.StepAsync("Payout instruction signed by the pool's threshold key", async report =>
            {
                var payout = Encoding.UTF8.GetBytes("{\"amount\":\"250.00\",\"currency\":\"EUR\",\"member\":\"member-1\",\"pool\":\"pool-1\"}");
                var signer = new ThresholdSigner(stores);
                report("custodians computing partials inside their tokens");
                var (jws, signature) = await signer.SignJwsAsync(key, payout, null, cancellationToken).ConfigureAwait(false);
                var dir = Directory.CreateDirectory(Path.Combine(outDir, "payouts")).FullName;
                await File.WriteAllTextAsync(Path.Combine(dir, "sample.jws"), jws, cancellationToken).ConfigureAwait(false);
                if (!Jws.TryParse(jws, out var parts) || !Jws.Verify(parts, KeyPublication.Select(key, parts.Kid)[0].Key))
                {
                    throw new InvalidOperationException("the payout JWS does not verify against jwks.json");
                }

                return (0, $"signed by {signature.Kid}; JWS verified against jwks.json");
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ShareStoreException or KeyCatalogException or ThresholdSigningException or InvalidOperationException or IOException)
        {
            console.Fail(step, e.Message);
            return false;
        }

        console.Line($"artefacts: {outDir}");
        return true;
    }

    private string CustodianUri(string token) =>
        $"pkcs11:token={token}?module-path={Hardware.Pkcs11.Pkcs11Uri.DefaultModulePath}&pin-source=file:{Path.Combine(HsmDir, "pins", token + ".pin")}";

    /// <summary>Runs softhsm-config/create-tokens.sh (idempotent) and points SoftHSM at the demo's token folder.</summary>
    private async Task<string> CreateTokensAsync(Action<string> report, CancellationToken cancellationToken)
    {
        var script = FindScript() ?? throw new InvalidOperationException("softhsm-config/create-tokens.sh not found: run the demo from the ShareVault repository");
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(HsmDir);
        foreach (var label in Custodians)
        {
            start.ArgumentList.Add(label);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var lines = new List<string>();
        while (await process.StandardOutput.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            report(line);
            lines.Add(line);
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
