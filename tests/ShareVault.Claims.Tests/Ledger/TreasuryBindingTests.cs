using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;
using ShareVault.Claims.Tests.Claims;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Claims.Tests.Ledger;

/// <summary>The <c>treasury</c> entry (the pool bound to its on-chain treasury) in the engine and the registry fold, and the payout message layout.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class TreasuryBindingTests(PoolKeyFixture key)
{
    private const string Treasury = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";
    private const string Token = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
    private const string Alice = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";

    [Fact]
    public async Task A_bound_treasury_is_folded_and_a_settlement_by_another_treasury_or_of_another_amount_is_inconsistent()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await ClaimsFlowContract.SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        await engine.StoreAsync(ClaimsFlowContract.Leak("dev-1", 15), default);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
        await engine.RegisterPayoutAddressAsync("pool-1", "alice", Alice, null, default);

        var body = PoolRegistry.TreasuryBody(31337, Treasury.ToUpperInvariant().Replace("0X", "0x", StringComparison.Ordinal), Token, 10_000);
        Assert.True(await engine.BindTreasuryAsync("pool-1", body, null, default));
        Assert.False(await engine.BindTreasuryAsync("pool-1", body, null, default)); // the same binding again changes nothing
        var bound = engine.Treasury("pool-1")!;
        Assert.Equal((31337L, Treasury, Token, "eip155:31337"), (bound.ChainId, bound.Address, bound.Token, bound.Caip2));

        var claim = engine.ListPayouts("pool-1").Single().ClaimId;
        JsonObject Settled(string treasury, string amount) => new()
        {
            ["claim"] = claim,
            ["chain"] = "eip155:31337",
            ["treasury"] = treasury,
            ["token"] = Token,
            ["to"] = Alice,
            ["amount"] = amount,
            ["tx"] = "0x01",
            ["block"] = 9L,
        };

        var registry = PoolRegistry.Fold("pool-1", engine.LedgerEntries("pool-1")).Registry;
        LedgerEntry Next(JsonObject b) => LedgerEntry.Create("pool-1", registry.Sequence + 1, DateTimeOffset.UtcNow, LedgerEntry.PayoutSettled, b, registry.Head);
        var otherTreasury = registry.Clone().Apply(Next(Settled(Token, "250000000")));
        var otherAmount = registry.Clone().Apply(Next(Settled(Treasury, "250000001")));
        Assert.Equal(RegistryRefusal.Inconsistent, otherTreasury.Refusal);
        Assert.Contains("not by the treasury the pool is bound to", otherTreasury.Detail, StringComparison.Ordinal);
        Assert.Equal(RegistryRefusal.Inconsistent, otherAmount.Refusal);
        Assert.True(registry.Clone().Apply(Next(Settled(Treasury, "250000000"))).Applied);

        var malformed = LedgerEntry.Create("pool-1", registry.Sequence + 1, DateTimeOffset.UtcNow, LedgerEntry.Treasury, PoolRegistry.TreasuryBody(1, "0x12", Token, 1), registry.Head);
        Assert.Equal(RegistryRefusal.Inconsistent, registry.Clone().Apply(malformed).Refusal);
    }

    [Fact]
    public void The_payout_message_is_120_bytes_that_parse_back_and_nothing_else_parses()
    {
        var message = new TreasuryPayoutMessage(31337, Treasury, TreasuryPayoutMessage.HashClaim("clm-1"), Token, Alice, 250_000_000).Encode();

        Assert.Equal(120, message.Length);
        Assert.Equal("SVP1"u8.ToArray(), message[..4]);
        var parsed = TreasuryPayoutMessage.TryRead(message)!;
        Assert.Equal((31337L, Treasury, Token, Alice, new System.Numerics.BigInteger(250_000_000)), (parsed.ChainId, parsed.Treasury, parsed.Token, parsed.To, parsed.Amount));
        Assert.Equal(TreasuryPayoutMessage.HashClaim("clm-1"), parsed.ClaimHash);
        Assert.Null(TreasuryPayoutMessage.TryRead(message.AsSpan(0, 119)));
        var retagged = message.ToArray();
        retagged[3] = (byte)'2';
        Assert.Null(TreasuryPayoutMessage.TryRead(retagged));
        Assert.Null(TreasuryPayoutMessage.TryRead("{\"claim\":\"clm-1\"}"u8));
    }
}
