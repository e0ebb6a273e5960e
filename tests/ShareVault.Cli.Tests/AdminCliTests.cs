using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;

namespace ShareVault.Cli.Tests;

/// <summary><c>sharevault admin key create|sign</c> on a real token, and the registry verbs that take their signatures.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class AdminCliTests(PoolKeyFixture key)
{
    [Fact]
    public async Task An_admin_key_born_in_a_token_signs_the_pool_and_its_policy_and_an_unsigned_policy_is_refused()
    {
        var dir = Path.Combine(key.DataDir, "admin-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var db = Path.Combine(dir, "claims.db");
        var adminUri = SoftHsm.Shared.Uri("admin-a", "admin-" + Guid.NewGuid().ToString("N")[..8]);
        async Task<ProcessRunner.Result> Run(params string[] args) => await CliRunner.RunAsync(key.DataDir, [.. args, "--db", db]);
        async Task<string> Ok(params string[] args)
        {
            var result = await Run(args);
            Assert.True(result.ExitCode == 0, $"sharevault {string.Join(' ', args)} failed: {result.StdErr}");
            return result.StdOut;
        }

        async Task<string> SignAsync(string kind, string body)
        {
            var file = Path.Combine(dir, kind + ".json");
            await File.WriteAllTextAsync(file, body);
            var sig = Path.Combine(dir, kind + ".sig.json");
            await File.WriteAllTextAsync(sig, await Ok("admin", "sign", "--key", adminUri, "--pool", "adm-pool", "--kind", kind, "--body", file));
            return sig;
        }

        var pem = await Ok("admin", "key", "create", "--token", adminUri);
        var admin = AdminKey.FromPem(pem);
        Assert.Equal(pem, await Ok("admin", "key", "create", "--token", adminUri)); // opened again, not a second key
        var pemFile = Path.Combine(dir, "admin.pem");
        await File.WriteAllTextAsync(pemFile, pem);

        string[] create = ["pool", "create", "--pool", "adm-pool", "--name", "Riverside", "--key", key.KeyName, "--max-payout", "50000", "--admin-key", pemFile];
        var poolBody = await Ok([.. create, "--print-body"]);
        var refused = await Run(create);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("administrator", refused.StdErr, StringComparison.Ordinal);
        await Ok([.. create, "--admin-sig", await SignAsync(LedgerEntry.PoolCreated, poolBody)]);
        await Ok("pool", "join", "--pool", "adm-pool", "--member", "alice");

        string[] policy = ["pool", "policy", "--pool", "adm-pool", "--member", "alice", "--policy", "adm-pol", "--rule", "water_leak == 1 for 10m", "--amount", "1000"];
        var unsigned = await Run(policy);
        Assert.Equal(1, unsigned.ExitCode);
        Assert.Contains("administrator", unsigned.StdErr, StringComparison.Ordinal);
        await Ok([.. policy, "--admin-sig", await SignAsync(LedgerEntry.PolicyIssued, await Ok([.. policy, "--print-body"]))]);

        string[] premium = ["pool", "premium", "--pool", "adm-pool", "--member", "alice", "--amount", "30000", "--ref", "bank-2026-0001"];
        var unpaid = await Run(premium);
        Assert.Equal(1, unpaid.ExitCode);
        Assert.Contains("administrator", unpaid.StdErr, StringComparison.Ordinal);
        await Ok([.. premium, "--admin-sig", await SignAsync(LedgerEntry.Premium, await Ok([.. premium, "--print-body"]))]);

        // The entries carry signatures by the token's key that anyone holding its public key checks.
        using var direct = ShareVault.Claims.Storage.ClaimsDatabase.Open(db);
        foreach (var kind in new[] { LedgerEntry.PoolCreated, LedgerEntry.PolicyIssued, LedgerEntry.Premium })
        {
            var body = JsonNode.Parse((string)ShareVault.Claims.Storage.ClaimsDatabase.Scalar(direct.Writer, null, "SELECT body FROM ledger WHERE pool_id='adm-pool' AND kind=@k", ("@k", kind))!)!.AsObject();
            Assert.Equal(AdminCheck.Valid, AdminSignature.Verify("adm-pool", kind, body, [admin]));
        }
    }
}
