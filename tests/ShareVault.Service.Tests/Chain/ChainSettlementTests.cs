using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Service.Chain;

namespace ShareVault.Service.Tests.Chain;

/// <summary>
/// The service side of the treasury on a real anvil: signed payouts settled on chain and recorded
/// as payout_settled entries, a restart between the mined payout and its entry, the chain down,
/// checkpoints anchored, and <c>ledger verify --chain</c>'s cross-check.
/// </summary>
[Collection(ChainKeysGroup.Name)]
public sealed class ChainSettlementTests(ChainKeysFixture keys, AnvilDefault anvil) : IClassFixture<AnvilDefault>
{
    private const string Pool = "pool-1";
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddHours(-6).ToUnixTimeMilliseconds());
    private static readonly string Alice = Accounts.Address(AnvilProcess.MemberAccountKeys[2]).ToLowerInvariant();

    [Fact]
    public async Task A_signed_payout_is_settled_on_chain_and_recorded_once()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        var before = await world.Client.BalanceAsync(world.Config.Token, Alice, default);

        var first = await world.Settlement().RunOnceAsync(default);
        var second = await world.Settlement().RunOnceAsync(default);

        Assert.Equal(1, first.Settled);
        Assert.Equal((0, 0), (second.Settled, second.Reconciled));
        Assert.Equal(before + 250_000_000, await world.Client.BalanceAsync(world.Config.Token, Alice, default));
        var settled = Assert.Single(world.Engine.LedgerEntries(Pool), e => e.Kind == LedgerEntry.PayoutSettled);
        var paid = Assert.Single(await world.Client.PayoutsAsync(default));
        Assert.Equal(paid.TxHash, settled.Body["tx"]!.GetValue<string>());
        Assert.Equal(paid.Block, settled.Body["block"]!.GetValue<long>());
        Assert.Equal(("250000000", Alice, "eip155:31337"), (settled.Body["amount"]!.GetValue<string>(), settled.Body["to"]!.GetValue<string>(), settled.Body["chain"]!.GetValue<string>()));
        Assert.Empty(world.Engine.PayoutsToSettle(Pool));
        Assert.Null(PoolRegistry.Fold(Pool, world.Engine.LedgerEntries(Pool)).Refused);
    }

    [Fact]
    public async Task A_restart_after_the_payout_was_mined_records_it_from_the_event_and_pays_nothing_twice()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        var crashing = world.Settlement(afterMined: (_, _, _) => throw new IOException("simulated crash between the receipt and the ledger write"));
        await Assert.ThrowsAsync<IOException>(() => crashing.RunOnceAsync(default));
        Assert.Single(await world.Client.PayoutsAsync(default));
        Assert.Single(world.Engine.PayoutsToSettle(Pool)); // mined, but not recorded

        world.Restart();
        var pass = await world.Settlement().RunOnceAsync(default);

        Assert.Equal((0, 1), (pass.Settled, pass.Reconciled));
        Assert.Single(await world.Client.PayoutsAsync(default));
        Assert.Single(world.Engine.LedgerEntries(Pool), e => e.Kind == LedgerEntry.PayoutSettled);
        Assert.Empty(world.Engine.PayoutsToSettle(Pool));
        Assert.Equal(new BigInteger(250_000_000), await world.Client.BalanceAsync(world.Config.Token, Alice, default) - world.AliceStart);
    }

    [Fact]
    public async Task With_the_chain_down_nothing_is_lost_and_the_next_pass_settles()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        var nobody = $"http://127.0.0.1:{LoopbackPorts.Reserve()}";
        var down = new ChainSettlement(world.Engine, new TreasuryClient(nobody, AnvilProcess.DevAccountKey, world.Config.ChainId, world.Config.Treasury), world.Config, world.Keys);

        var failure = await Record.ExceptionAsync(() => down.RunOnceAsync(default));

        Assert.NotNull(failure);
        Assert.True(ChainSettlement.IsTransient(failure), failure.ToString());
        Assert.Single(world.Engine.PayoutsToSettle(Pool));
        Assert.Equal(1, (await world.Settlement().RunOnceAsync(default)).Settled);
    }

    [Fact]
    public async Task A_payout_waits_until_the_member_registers_an_address()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil, registerAddress: false);

        var pass = await world.Settlement().RunOnceAsync(default);
        Assert.Equal(0, pass.Settled);
        Assert.Contains("no payout address", Assert.Single(pass.Waiting), StringComparison.Ordinal);

        await world.Engine.RegisterPayoutAddressAsync(Pool, "alice", Alice, null, default);
        Assert.Equal(1, (await world.Settlement().RunOnceAsync(default)).Settled);
    }

    [Fact]
    public async Task Checkpoints_are_anchored_and_a_rewritten_history_fails_the_chain_cross_check()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        await world.Settlement().RunOnceAsync(default);
        var checkpoint = await world.Engine.CheckpointAsync(Pool, force: true, default);
        Assert.NotNull(checkpoint);

        var pass = await world.Settlement().RunOnceAsync(default);
        var agreeing = await ChainLedgerCheck.VerifyAsync(world.Engine.ExportLedger(Pool), world.Client, default);

        Assert.Equal(1, pass.Anchored);
        Assert.True(agreeing.IsValid, agreeing.Detail);
        Assert.Equal((1, 1), (agreeing.Anchors, agreeing.Settlements));

        // Someone with the pool's key anchors a checkpoint over a different head at the same
        // sequence number (a rewritten history): the export no longer agrees with the chain.
        var forged = LedgerCheckpoint.Payload(Pool, checkpoint!.Sequence, Convert.ToHexStringLower(SHA256.HashData("rewritten"u8)), checkpoint.Time);
        Assert.True((await world.Client.AnchorAsync(forged, (await keys.AuthoriseAsync(keys.Product, forged)).ToParam(), default)).Succeeded);
        var disagreeing = await ChainLedgerCheck.VerifyAsync(world.Engine.ExportLedger(Pool), world.Client, default);

        Assert.False(disagreeing.IsValid);
        Assert.Contains("rewritten", disagreeing.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_premium_deposited_on_chain_is_recorded_once_by_two_instances_and_cross_checked_against_its_event()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        Assert.True(await world.Engine.BindTreasuryAsync(Pool, PoolRegistry.TreasuryBody(world.Config.ChainId, world.Config.Treasury, world.Config.Token, world.Config.UnitsPerMinorUnit), null, default));
        var member = new TreasuryClient(anvil.Anvil.RpcUrl, AnvilProcess.MemberAccountKeys[2], world.Config.ChainId, world.Config.Treasury);
        Assert.True((await world.Client.MintAsync(world.Config.Token, Alice, world.Config.ToTokenUnits(12_000), default)).Succeeded);
        var deposit = await member.DepositAsync(world.Config.Token, world.Config.ToTokenUnits(12_000), "alice", default);
        Assert.True(deposit.Succeeded, deposit.ToString());
        var premiumsBefore = PoolRegistry.Fold(Pool, world.Engine.LedgerEntries(Pool)).Registry.Premiums;

        // Two instances (or a restart) pass over the same events: the deposit is one premium.
        var first = await world.Settlement().RunOnceAsync(default);
        var second = await world.Settlement().RunOnceAsync(default);

        Assert.Equal((1, 0), (first.Premiums, second.Premiums));
        var premium = Assert.Single(world.Engine.LedgerEntries(Pool), e => e.Kind == LedgerEntry.Premium && e.Body["ref"]?.GetValue<string>()?.StartsWith("eip155:31337:0x", StringComparison.Ordinal) == true);
        Assert.Equal(("alice", 12_000L), (premium.Body["member"]!.GetValue<string>(), premium.Body["amount"]!.GetValue<long>()));
        Assert.Equal(premiumsBefore + 12_000, PoolRegistry.Fold(Pool, world.Engine.LedgerEntries(Pool)).Registry.Premiums);
        Assert.Contains(deposit.TxHash!.ToLowerInvariant(), premium.Body["ref"]!.GetValue<string>(), StringComparison.Ordinal);

        var agreeing = await ChainLedgerCheck.VerifyAsync(world.Engine.ExportLedger(Pool), world.Client, default);
        Assert.True(agreeing.IsValid, agreeing.Detail);
        Assert.Equal(1, agreeing.Premiums);

        // An export that records the deposit as a larger premium disagrees with the event.
        var tampered = world.Engine.ExportLedger(Pool);
        tampered["entries"]!.AsArray().Single(e => e!["seq"]!.GetValue<long>() == premium.Sequence)!["body"]!["amount"] = 90_000L;
        var disagreeing = await ChainLedgerCheck.VerifyAsync(tampered, world.Client, default);
        Assert.False(disagreeing.IsValid);
        Assert.Contains("recorded as 90000 minor units, but the deposit is", disagreeing.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_treasury_view_reads_the_bound_treasurys_balance_only_from_its_own_chain()
    {
        using var world = await World.CreateAsync(keys, anvil.Anvil);
        var view = new TreasuryView(world.Engine, anvil.Anvil.RpcUrl);
        var unbound = await Assert.ThrowsAsync<ShareVault.Claims.Errors.ClaimsException>(() => view.ReadAsync(Pool, default));
        Assert.Equal(ShareVault.Claims.Errors.ClaimsError.NotFound, unbound.Error);

        var body = PoolRegistry.TreasuryBody(world.Config.ChainId, world.Config.Treasury, world.Config.Token, world.Config.UnitsPerMinorUnit);
        Assert.True(await world.Engine.BindTreasuryAsync(Pool, body, null, default));
        var before = await view.ReadAsync(Pool, default);
        await world.Settlement().RunOnceAsync(default);
        var after = await view.ReadAsync(Pool, default);

        var onChain = await world.Client.BalanceAsync(world.Config.Token, world.Config.Treasury, default);
        Assert.Equal(onChain.ToString(System.Globalization.CultureInfo.InvariantCulture), after.Balance);
        Assert.Equal(25_000, before.BalanceMinor - after.BalanceMinor); // the settled payout left the treasury
        Assert.Equal((world.Config.Treasury.ToLowerInvariant(), "EUR", (string?)null), (after.Treasury, after.Currency, after.Note));

        // Without an RPC URL no figure is shown, and the note says why.
        var offline = await new TreasuryView(world.Engine, null).ReadAsync(Pool, default);
        Assert.Null(offline.Balance);
        Assert.Contains("--chain", offline.Note, StringComparison.Ordinal);
    }

    /// <summary>A pool with one paid claim (alice's flood), its treasury on anvil with the pool key, and a service engine.</summary>
    private sealed class World : IDisposable
    {
        private readonly ChainKeysFixture _keys;
        private readonly string _dbPath;
        private ClaimsDatabase _db;

        private World(ChainKeysFixture keys, string dbPath, ClaimsDatabase db, ClaimsEngine engine)
        {
            _keys = keys;
            _dbPath = dbPath;
            _db = db;
            Engine = engine;
            Keys = ChainPoolKey.FromRecord(keys.Product);
        }

        public ClaimsEngine Engine { get; private set; }

        public ChainConfig Config { get; private set; } = null!;

        public TreasuryClient Client { get; private set; } = null!;

        public IReadOnlyList<ChainPoolKey> Keys { get; }

        public BigInteger AliceStart { get; private set; }

        public static async Task<World> CreateAsync(ChainKeysFixture keys, AnvilProcess anvil, bool registerAddress = true)
        {
            var dbPath = Path.Combine(keys.DataDir, "db-" + Guid.NewGuid().ToString("N")[..10], "claims.db");
            var db = ClaimsDatabase.Open(dbPath);
            var engine = new ClaimsEngine(db, new ThresholdPoolSigner(keys.Catalog, keys.Signer), TimeProvider.System);
            var world = new World(keys, dbPath, db, engine);
            await engine.CreatePoolAsync(Pool, "Riverside homes", "EUR", keys.Product.Name, 50_000, default);
            await engine.AddMemberAsync(Pool, "alice", "Alice", default);
            await engine.IssuePolicyAsync(Pool, "alice", "pol-alice-flood", "water_leak == 1 for 10m", 25_000, 0, null, default);
            await engine.RecordPremiumAsync(Pool, "alice", 100_000, default);
            using (var device = ECDsa.Create(ECCurve.NamedCurves.nistP256))
            {
                await engine.EnrollDeviceAsync(Pool, "alice", "dev-1", device.ExportSubjectPublicKeyInfo(), default);
            }

            if (registerAddress)
            {
                await engine.RegisterPayoutAddressAsync(Pool, "alice", Alice, null, default);
            }

            await engine.StoreAsync(Leak("dev-1", 15), default);
            Assert.Equal(1, await engine.ProcessPayoutsAsync(default));

            world.Config = await TreasuryDeployer.DeployAsync(anvil.RpcUrl, AnvilProcess.DevAccountKey, Pool, 50_000, world.Keys, null, default);
            world.Client = new TreasuryClient(anvil.RpcUrl, AnvilProcess.DevAccountKey, world.Config.ChainId, world.Config.Treasury);
            Assert.True((await world.Client.MintAsync(world.Config.Token, world.Config.Treasury, 10_000_000_000, default)).Succeeded);
            world.AliceStart = await world.Client.BalanceAsync(world.Config.Token, Alice, default);
            return world;
        }

        public ChainSettlement Settlement(Func<PayoutToSettle, ChainTx, CancellationToken, Task>? afterMined = null) =>
            new(Engine, Client, Config, Keys) { AfterPayoutMined = afterMined };

        /// <summary>As after a service restart: a new engine over the same database file.</summary>
        public void Restart()
        {
            Engine.Dispose();
            _db.Dispose();
            _db = ClaimsDatabase.Open(_dbPath);
            Engine = new ClaimsEngine(_db, new ThresholdPoolSigner(_keys.Catalog, _keys.Signer), TimeProvider.System);
        }

        public void Dispose()
        {
            Engine.Dispose();
            _db.Dispose();
        }

        private static VerifiedRecord[] Leak(string device, int minutes) =>
            [.. Enumerable.Range(0, minutes + 2).Select(i =>
            {
                var time = T0.AddMinutes(i);
                var value = i < 2 ? 0 : 1;
                var body = Encoding.UTF8.GetBytes($"{device}/{i}/{value}");
                return new VerifiedRecord(device, i, time, SHA256.HashData(body), body, [new Reading("water_leak", null, value, time)], ChainStart: i == 0);
            })];
    }
}
