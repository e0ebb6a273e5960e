using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Hardware;
using ShareVault.Node.Audit;
using ShareVault.Service.Chain;

namespace ShareVault.Node.Tests.Server;

/// <summary>
/// Three guarded node processes (the production flags: --admin-key, no raw signing) and a real
/// anvil, one each for the class: a payout the nodes signed is settled on the pool's PoolTreasury
/// through the nodes (purpose settlement) and the member's balance rises; acting as a malicious
/// coordinator, treasury messages with another recipient, amount, treasury, chain id, or for an
/// unpaid claim are refused by every node with the specific reason in its hash-chained audit log.
/// </summary>
public sealed class SettlementThroughNodesTests(SettlingNodes nodes) : IClassFixture<SettlingNodes>
{
    private static readonly string Alice = new Nethereum.Web3.Accounts.Account(AnvilProcess.MemberAccountKeys[2]).Address.ToLowerInvariant();
    private static readonly string Mallory = new Nethereum.Web3.Accounts.Account(AnvilProcess.MemberAccountKeys[3]).Address.ToLowerInvariant();

    [Fact]
    public async Task A_payout_settled_through_the_nodes_pays_the_member_and_each_signer_audits_it()
    {
        var world = await nodes.PaidClaimOnChainAsync();
        var before = await world.Client.BalanceAsync(world.Config.Token, Alice, default);

        var pass = await new ChainSettlement(nodes.Engine, world.Client, world.Config, world.Keys).RunOnceAsync(default);

        Assert.Equal(1, pass.Settled);
        Assert.Equal(before + world.Config.ToTokenUnits(GuardedNodes.PolicyAmount), await world.Client.BalanceAsync(world.Config.Token, Alice, default));
        var settled = Assert.Single(nodes.Engine.LedgerEntries(world.Pool.Id), e => e.Kind == LedgerEntry.PayoutSettled);
        Assert.Equal(Alice, settled.Body["to"]!.GetValue<string>());

        // Some quorum's two nodes signed the treasury message after their guard's checks.
        var message = TreasuryMessages.Payout(world.Config.ChainId, world.Config.Treasury, TreasuryMessages.ClaimHash(world.ClaimId), world.Config.Token, Alice, world.Config.ToTokenUnits(GuardedNodes.PolicyAmount));
        var signed = Enumerable.Range(0, 3).SelectMany(i => nodes.VerifiedAudit(i).Where(l => Text(l["request"]?["purpose"]) == "settlement" && Text(l["request"]?["claim"]) == world.ClaimId
            && Text(l["outcome"]?["result"]) == "signed")).ToList();
        Assert.Equal(2, signed.Count);
        Assert.All(signed, l => Assert.Contains($"settlement of claim {world.ClaimId}", Text(l["outcome"]!["detail"]), StringComparison.Ordinal));

        // The same message again (a coordinator retrying after a crash) is signed again; the contract pays once.
        foreach (var kid in CoveringKids())
        {
            var (_, signature) = await nodes.Signer.SignJwsAsync(nodes.Key, message, kid, Context(world, world.ClaimId, beforeSettled: true), CancellationToken.None);
            Assert.Equal(kid, signature.Kid);
        }
    }

    [Fact]
    public async Task Treasury_messages_of_a_malicious_coordinator_are_refused_by_every_node_with_their_reason()
    {
        var world = await nodes.PaidClaimOnChainAsync();
        var c = world.Config;
        var units = c.ToTokenUnits(GuardedNodes.PolicyAmount);
        var claim = TreasuryMessages.ClaimHash(world.ClaimId);

        await RefusedByEveryNodeAsync(world, TreasuryMessages.Payout(c.ChainId, c.Treasury, claim, c.Token, Mallory, units), world.ClaimId, "WrongRecipient", "payout address is " + Alice);
        await RefusedByEveryNodeAsync(world, TreasuryMessages.Payout(c.ChainId, c.Treasury, claim, c.Token, Alice, units * 2), world.ClaimId, "WrongAmount", $"its payout is {GuardedNodes.PolicyAmount} EUR");
        await RefusedByEveryNodeAsync(world, TreasuryMessages.Payout(c.ChainId, c.Token, claim, c.Token, Alice, units), world.ClaimId, "WrongTreasury", "the pool's treasury is " + c.Treasury.ToLowerInvariant());
        await RefusedByEveryNodeAsync(world, TreasuryMessages.Payout(1, c.Treasury, claim, c.Token, Alice, units), world.ClaimId, "WrongTreasury", "is for chain id 1");
        await RefusedByEveryNodeAsync(world, TreasuryMessages.Payout(c.ChainId, c.Treasury, TreasuryMessages.ClaimHash("claim-never-paid"), c.Token, Alice, units), "claim-never-paid", "ClaimNotPaid", "not in the node's ledger");

        // None of it moved money, and the genuine settlement still goes through the nodes.
        Assert.Empty(await world.Client.PayoutsAsync(default));
        Assert.Equal(1, (await new ChainSettlement(nodes.Engine, world.Client, c, world.Keys).RunOnceAsync(default)).Settled);
    }

    /// <summary>
    /// Sends the treasury message through the two quorums that cover all three nodes and checks that
    /// each node refused it with <paramref name="code"/>, in the coordinator's error and as a refused
    /// line in its audit log (chain verified) whose detail contains <paramref name="detail"/>.
    /// </summary>
    private async Task RefusedByEveryNodeAsync(SettlingNodes.ChainPool world, byte[] message, string claimId, string code, string detail)
    {
        var sent = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kid in CoveringKids())
        {
            var refused = await Assert.ThrowsAsync<ThresholdSigningException>(() => nodes.Signer.SignJwsAsync(nodes.Key, message, kid, Context(world, claimId), CancellationToken.None));
            foreach (var member in nodes.Key.Quorums.Single(q => q.Kid == kid).Members)
            {
                var failure = Assert.Single(refused.Failures, f => f.Custodian == member);
                Assert.Equal(CustodianFailureReason.Refused, failure.Reason);
                Assert.Equal(code, failure.Code);
                Assert.Contains(detail, failure.Detail, StringComparison.Ordinal);
                sent[member] = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(Jws.SigningInput(kid, message))));
            }
        }

        Assert.Equal(nodes.Names.Order(), sent.Keys.Order());
        for (var i = 0; i < nodes.Names.Count; i++)
        {
            var line = nodes.VerifiedAudit(i).Last(l => Text(l["request"]?["signing_input_sha256"]) == sent[nodes.Names[i]]);
            Assert.Equal(("settlement", world.Pool.Id, claimId), (Text(line["request"]!["purpose"]), Text(line["request"]!["pool"]), Text(line["request"]!["claim"])));
            Assert.Equal(("refused", code), (Text(line["outcome"]!["result"]), Text(line["outcome"]!["code"])));
            Assert.Contains(detail, Text(line["outcome"]!["detail"]), StringComparison.Ordinal);
        }
    }

    /// <summary>The justification and ledger the engine sends with a settlement request (<c>ClaimsEngine.SignSettlementAsync</c>).</summary>
    private SigningContext Context(SettlingNodes.ChainPool world, string claimId, bool beforeSettled = false)
    {
        var entries = nodes.Engine.LedgerEntries(world.Pool.Id).Where(e => !beforeSettled || e.Kind != LedgerEntry.PayoutSettled).ToList();
        var justification = new JsonObject
        {
            ["pool"] = world.Pool.Id,
            ["purpose"] = PoolSigningRequest.SettlementPurpose,
            ["claim"] = claimId,
            ["jwks"] = nodes.Engine.Signer.Jwks(nodes.Key.Name),
        };
        return new SigningContext(justification, after => ForgedLedger.Segment(entries, after));
    }

    /// <summary>The kid of a quorum without the TPM node and of one with it: together every node.</summary>
    private string[] CoveringKids() =>
        [nodes.Key.Quorums.First(q => !q.Members.Contains(nodes.Names[2])).Kid, nodes.Key.Quorums.First(q => q.Members.Contains(nodes.Names[2])).Kid];

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

/// <summary>The guarded network of <see cref="SettlementThroughNodesTests"/> (tokens node-s/node-r, a swtpm of its own) and one anvil.</summary>
public sealed class SettlingNodes() : GuardedNodes("node-s", "node-r", "node-w")
{
    private AnvilProcess? _anvil;

    public AnvilProcess Anvil => _anvil!;

    public override async Task InitializeAsync()
    {
        _anvil = AnvilProcess.Start();
        await base.InitializeAsync();
    }

    /// <summary>
    /// A pool of its own with alice's flood paid by the nodes' signature, its treasury deployed
    /// with the pool key and funded, the pool bound to it and alice's payout address registered
    /// (both admin-signed, as the nodes require).
    /// </summary>
    public async Task<ChainPool> PaidClaimOnChainAsync()
    {
        var pool = await CreatePoolAsync();
        var keys = ChainPoolKey.FromRecord(Key);
        var config = await TreasuryDeployer.DeployAsync(Anvil.RpcUrl, AnvilProcess.DevAccountKey, pool.Id, 50_000, keys, null, default);
        var client = new TreasuryClient(Anvil.RpcUrl, AnvilProcess.DevAccountKey, config.ChainId, config.Treasury);
        Assert.True((await client.MintAsync(config.Token, config.Treasury, config.ToTokenUnits(1_000_000), default)).Succeeded);

        var treasury = PoolRegistry.TreasuryBody(config.ChainId, config.Treasury, config.Token, config.UnitsPerMinorUnit);
        Assert.True(await Engine.BindTreasuryAsync(pool.Id, treasury, Sign(pool.Id, LedgerEntry.Treasury, treasury), default));
        var alice = new Nethereum.Web3.Accounts.Account(AnvilProcess.MemberAccountKeys[2]).Address.ToLowerInvariant();
        await Engine.RegisterPayoutAddressAsync(pool.Id, "alice", alice, Sign(pool.Id, LedgerEntry.PayoutAddress, Claims.ClaimsEngine.PayoutAddressBody("alice", alice)), default);

        await StoreAsync(pool, pool.Device.Leak(Start, wetMinutes: 12));
        Assert.True(await Engine.ProcessPayoutsAsync(default) >= 1);
        var payout = Assert.Single(Engine.ListPayouts(pool.Id));
        return new ChainPool(pool, payout.ClaimId, config, client, keys);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _anvil?.Dispose();
    }

    public sealed record ChainPool(TestPool Pool, string ClaimId, ChainConfig Config, TreasuryClient Client, IReadOnlyList<ChainPoolKey> Keys);
}
