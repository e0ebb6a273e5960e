using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Service.Chain;

namespace ShareVault.Cli.Tests;

/// <summary>
/// The chain verbs of the built <c>sharevault</c>, run as child processes against one real anvil for
/// the class: deploy (which binds the pool with a treasury entry), address, settle, status, anchor,
/// and <c>ledger verify --chain</c>, which passes on the genuine export and fails on a rewritten one.
/// The paid claim they settle is made in this process by the claims engine on the same database,
/// its payout signed by the collection's pool key (nothing signs in this process while a child runs).
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class ChainCliTests(PoolKeyFixture key, ChainCliTests.Chain chain) : IClassFixture<ChainCliTests.Chain>
{
    /// <summary>anvil's dev account 1 (public test mnemonic): alice's payout address.</summary>
    private const string Alice = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

    [Fact]
    public async Task Deploy_address_settle_status_anchor_and_ledger_verify_chain_work_as_processes_and_a_rewritten_export_fails()
    {
        var pool = "chain-cli-" + Guid.NewGuid().ToString("N")[..8];
        var db = key.NewDatabasePath();
        await PaidClaimAsync(db, pool, premium: 100_000);

        var deployed = await Run(db, "chain", "deploy", "--pool", pool, "--rpc", chain.Anvil.RpcUrl, "--fund", "1000000");
        Assert.Contains($"bound to treasury", deployed, StringComparison.Ordinal);
        var config = ChainConfig.Load(key.DataDir, pool)!;
        var client = new TreasuryClient(chain.Anvil.RpcUrl, null, config.ChainId, config.Treasury);
        var before = await client.BalanceAsync(config.Token, Alice, default);

        Assert.Contains("0 settled", await Run(db, "chain", "settle", "--pool", pool), StringComparison.Ordinal); // no address yet: waits
        await Run(db, "chain", "address", "--pool", pool, "--member", "alice", "--address", Alice);
        Assert.Contains("1 settled", await Run(db, "chain", "settle", "--pool", pool), StringComparison.Ordinal);
        Assert.Equal(before + config.ToTokenUnits(25_000), await client.BalanceAsync(config.Token, Alice, default));

        var status = await Run(db, "chain", "status", "--pool", pool);
        Assert.Contains("(975000 in minor units)", status, StringComparison.Ordinal);
        Assert.Contains("1 payout(s) on chain, 0 checkpoint(s) anchored", status, StringComparison.Ordinal);
        Assert.Contains("1 checkpoint(s) anchored", await Run(db, "chain", "anchor", "--pool", pool), StringComparison.Ordinal);

        var export = Path.Combine(Path.GetDirectoryName(db)!, "ledger.json");
        await Run(db, "ledger", "export", "--pool", pool, "--out", export);
        var agreeing = await Run(db, "ledger", "verify", "--in", export, "--chain", chain.Anvil.RpcUrl);
        Assert.Contains("1 settlement(s)", agreeing, StringComparison.Ordinal);

        // The same pool's history rewritten in another database (alice's premium changed), exported
        // with a valid checkpoint: it verifies offline, but not against the anchored checkpoint.
        var rewrittenDb = key.NewDatabasePath();
        await PaidClaimAsync(rewrittenDb, pool, premium: 900_000);
        var rewritten = Path.Combine(Path.GetDirectoryName(rewrittenDb)!, "ledger.json");
        await Run(rewrittenDb, "ledger", "export", "--pool", pool, "--out", rewritten);
        Assert.Equal(0, (await CliRunner.RunAsync(key.DataDir, "ledger", "verify", "--in", rewritten)).ExitCode);
        var refused = await CliRunner.RunAsync(key.DataDir, "ledger", "verify", "--in", rewritten, "--chain", chain.Anvil.RpcUrl, "--treasury", config.Treasury);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("ledger disagrees with the chain", refused.StdErr, StringComparison.Ordinal);
    }

    private async Task<string> Run(string db, params string[] args)
    {
        var result = await CliRunner.RunAsync(key.DataDir, [.. args, "--db", db]);
        Assert.True(result.ExitCode == 0, $"sharevault {string.Join(' ', args)} failed ({result.ExitCode}): {result.StdOut}{result.StdErr}");
        return result.StdOut;
    }

    /// <summary>An unadministered pool with alice's flood policy, a premium, her device's real COSE records of a leak, and the claim's payout signed.</summary>
    private async Task PaidClaimAsync(string dbPath, string pool, long premium)
    {
        using var db = ClaimsDatabase.Open(dbPath);
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await using var device = new SimulatedDevice("dev-" + pool);
        await engine.CreatePoolAsync(pool, "Riverside homes", "EUR", key.KeyName, 50_000, default);
        await engine.AddMemberAsync(pool, "alice", "Alice", default);
        await engine.IssuePolicyAsync(pool, "alice", "flood-" + pool, "water_leak == 1 for 10m", 25_000, 0, null, default);
        await engine.RecordPremiumAsync(pool, "alice", premium, default);
        await engine.EnrollDeviceAsync(pool, "alice", device.Id, device.PublicKey, default);
        var records = device.Leak(DateTimeOffset.UtcNow.AddHours(-1), wetMinutes: 12).Select(cose =>
        {
            var v = EvidenceVerifier.Verify(cose, id => id == device.Id ? device.Key : null);
            Assert.True(v.IsValid, v.Detail);
            var r = v.Record!;
            return new VerifiedRecord(r.DeviceId, r.Sequence, r.Time, v.Hash, cose, r.Readings, r.IsChainStart, r.PreviousHash.ToArray());
        }).ToList();
        await engine.StoreAsync(records, default);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
    }

    /// <summary>One anvil for the class.</summary>
    public sealed class Chain : IDisposable
    {
        public AnvilProcess Anvil { get; } = AnvilProcess.Start();

        public void Dispose() => Anvil.Dispose();
    }
}
