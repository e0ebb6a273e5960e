using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.Tests.Claims;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Claims.Tests.Ledger;

[Collection(PoolKeyGroup.Name)]
public sealed class PoolRegistryTests(PoolKeyFixture key)
{
    [Fact]
    public async Task Folding_the_engines_ledger_yields_its_pool_members_policies_devices_balance_and_claims()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await ClaimsFlowContract.SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        await engine.StoreAsync(ClaimsFlowContract.Leak("dev-1", 15), default);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));

        var entries = engine.LedgerEntries("pool-1");
        var (registry, refused, _) = PoolRegistry.Fold("pool-1", entries);

        Assert.Null(refused);
        Assert.Equal((entries[^1].Sequence, entries[^1].Hash), (registry.Sequence, registry.Head));
        Assert.Equal(("EUR", key.KeyName, 50_000L), (registry.Pool!.Currency, registry.Pool.KeyName, registry.Pool.MaxPayout));
        Assert.Equal(["alice", "bob"], registry.Members.Keys.Order());
        var policy = registry.Policies["pol-alice-flood"];
        Assert.Equal(("water_leak == 1 for 10m", 25_000L, 0), (policy.Rule, policy.PayoutAmount, policy.VotesRequired));
        var device = engine.ListDevices().Single();
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(device.PublicKey)), registry.Devices["dev-1"].KeySha256);
        var claim = Assert.Single(registry.Claims.Values);
        Assert.Equal((RegistryClaim.Paid, 25_000L, 11), (claim.Status, claim.Amount, claim.Evidence.Count));
        Assert.Equal(engine.GetPool("pool-1")!.Balance, registry.Balance);
        Assert.Equal(100_000 - 25_000, registry.Balance);
    }

    [Fact]
    public async Task An_entry_that_does_not_extend_the_head_is_refused_with_its_reason_and_changes_nothing()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await ClaimsFlowContract.SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var entries = engine.LedgerEntries("pool-1");
        var registry = new PoolRegistry("pool-1");
        Assert.True(registry.Apply(entries[0]).Applied);

        Assert.Equal(RegistryRefusal.NotNext, registry.Apply(entries[2]).Refusal);
        Assert.Equal(RegistryRefusal.PreviousMismatch, registry.Apply(entries[1] with { Previous = entries[1].Hash }).Refusal);
        var altered = entries[1] with { Body = new JsonObject { ["member"] = "mallory", ["name"] = "Mallory" } };
        Assert.Equal(RegistryRefusal.HashMismatch, registry.Apply(altered).Refusal);
        Assert.Equal((1L, entries[0].Hash), (registry.Sequence, registry.Head));
        Assert.Empty(registry.Members);

        // Well chained but contradicting the registry: a payout for a claim that was never opened.
        var payout = LedgerEntry.Create("pool-1", 2, DateTimeOffset.UtcNow, LedgerEntry.Payout,
            new JsonObject { ["claim"] = "clm-x", ["member"] = "alice", ["amount"] = 1L, ["currency"] = "EUR", ["kid"] = "k", ["jws"] = "j" }, entries[0].Hash);
        Assert.Equal(RegistryRefusal.Inconsistent, registry.Apply(payout).Refusal);
        var malformed = LedgerEntry.Create("pool-1", 2, DateTimeOffset.UtcNow, LedgerEntry.Premium, new JsonObject { ["member"] = "alice" }, entries[0].Hash);
        Assert.Equal(RegistryRefusal.Malformed, registry.Apply(malformed).Refusal);
        Assert.Equal(1, registry.Sequence);
    }
}
