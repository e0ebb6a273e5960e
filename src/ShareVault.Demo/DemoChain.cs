using System.Globalization;
using System.Net.Http.Json;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Nethereum.Util;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Custody.Keys;
using ShareVault.Service.Chain;

namespace ShareVault.Demo;

/// <summary>
/// The demo's chain (docs/treasury.md): an anvil dev node on loopback (stopped when the demo ends,
/// also on failure), the test stablecoin and the pool's PoolTreasury with the pool key; members pay
/// their premiums on chain (<c>deposit</c>), the flooded home's signed payout is settled through the
/// custody nodes (purpose settlement) into the member's address, and the ledger's checkpoint is
/// anchored. What it did is written to <c>chain.json</c> and checked with plain JSON-RPC calls (the
/// ones VERIFY.md shows with curl) and with <c>ledger verify --chain</c>'s cross-check.
/// </summary>
internal sealed class DemoChain : IDisposable
{
    /// <summary>Event signatures whose keccak256 is each event's topic0 (eth_getLogs filters).</summary>
    private static readonly string[] Events =
    [
        "Deposited(address,address,bytes32,uint256)",
        "PaidOut(bytes32,address,address,uint256,bytes32)",
        "CheckpointAnchored(uint256,bytes32,bytes)",
    ];

    private readonly AnvilProcess _anvil;
    private readonly Dictionary<string, string> _addresses = new(StringComparer.Ordinal);
    private readonly JsonObject _record = [];

    private DemoChain(AnvilProcess anvil, ChainConfig config, IReadOnlyList<ChainPoolKey> keys)
    {
        _anvil = anvil;
        Config = config;
        Keys = keys;
        Client = new TreasuryClient(anvil.RpcUrl, AnvilProcess.DevAccountKey, config.ChainId, config.Treasury);
    }

    public ChainConfig Config { get; }

    public IReadOnlyList<ChainPoolKey> Keys { get; }

    public TreasuryClient Client { get; }

    /// <summary>Starts anvil and deploys the test stablecoin and the pool's treasury (cap: the pool's largest payout); DATA_DIR/chain/POOL.json as <c>chain deploy</c> writes it.</summary>
    public static async Task<(DemoChain Chain, string Description)> StartAsync(KeyRecord key, string dataDir, long maxPayout, CancellationToken cancellationToken)
    {
        var anvil = AnvilProcess.Start();
        try
        {
            var keys = ChainPoolKey.FromRecord(key);
            var config = await TreasuryDeployer.DeployAsync(anvil.RpcUrl, AnvilProcess.DevAccountKey, DemoRun.Pool, maxPayout, keys, null, cancellationToken).ConfigureAwait(false);
            config.Save(dataDir);
            var chain = new DemoChain(anvil, config, keys);
            chain._record["rpc"] = anvil.RpcUrl;
            chain._record["chain_id"] = config.ChainId;
            chain._record["treasury"] = config.Treasury;
            chain._record["token"] = config.Token;
            chain._record["units_per_minor_unit"] = config.UnitsPerMinorUnit.ToString(CultureInfo.InvariantCulture);
            chain._record["topics"] = new JsonObject(Events.Select(e => KeyValuePair.Create(e[..e.IndexOf('(', StringComparison.Ordinal)], (JsonNode?)Topic(e))));
            return (chain, $"anvil pid {anvil.Pid} on {anvil.RpcUrl} (chain {config.Caip2}, loopback only)\n"
                + $"TestStablecoin (6 decimals) {config.Token}\nPoolTreasury {config.Treasury}: {keys.Count} quorum keys of pool-1, cap {Eur(maxPayout)} per payout");
        }
        catch
        {
            anvil.Dispose();
            throw;
        }
    }

    /// <summary>Starts the chain and pays the premiums (<see cref="StartAsync"/>, <see cref="PayPremiumsAsync"/>); anvil is stopped when that fails.</summary>
    public static async Task<(DemoChain Chain, string Description)> StartWithPremiumsAsync(KeyRecord key, string dataDir, ClaimsEngine engine, DemoAdmin admin, IReadOnlyList<string> members,
        Action<string> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(report);
        var (chain, description) = await StartAsync(key, dataDir, DemoRun.MaxPayout, cancellationToken).ConfigureAwait(false);
        try
        {
            report(description.Split('\n')[0]);
            return (chain, description + "\n" + await chain.PayPremiumsAsync(engine, admin, members, DemoRun.Premium, cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            chain.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The pool bound to its treasury and each member's payout address (both admin-signed, so the
    /// nodes accept them); each member (an anvil dev account holding test tokens) deposits its premium
    /// into the treasury; each Deposited event becomes a premium entry whose payment reference is
    /// chain, transaction and log index, signed by the administrator as the nodes require.
    /// </summary>
    public async Task<string> PayPremiumsAsync(ClaimsEngine engine, DemoAdmin admin, IReadOnlyList<string> members, long premium, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        var treasury = PoolRegistry.TreasuryBody(Config.ChainId, Config.Treasury, Config.Token, Config.UnitsPerMinorUnit);
        await engine.BindTreasuryAsync(DemoRun.Pool, treasury, admin.Sign(LedgerEntry.Treasury, treasury), cancellationToken).ConfigureAwait(false);
        lines.Add($"treasury entry: pool-1 bound to {Config.Treasury} on {Config.Caip2} (admin-signed; the nodes sign payout messages for it only)");
        var memberRecord = new JsonObject();
        for (var i = 0; i < members.Count; i++)
        {
            var accountKey = AnvilProcess.MemberAccountKeys[i];
            var address = new Nethereum.Web3.Accounts.Account(accountKey).Address.ToLowerInvariant();
            _addresses[members[i]] = address;
            memberRecord[members[i]] = address;
            await engine.RegisterPayoutAddressAsync(DemoRun.Pool, members[i], address, admin.Sign(LedgerEntry.PayoutAddress, ClaimsEngine.PayoutAddressBody(members[i], address)), cancellationToken)
                .ConfigureAwait(false);
            Require(await Client.MintAsync(Config.Token, address, Config.ToTokenUnits(premium), cancellationToken).ConfigureAwait(false), "minting test tokens");
            var member = new TreasuryClient(_anvil.RpcUrl, accountKey, Config.ChainId, Config.Treasury);
            var deposit = Require(await member.DepositAsync(Config.Token, Config.ToTokenUnits(premium), members[i], cancellationToken).ConfigureAwait(false), "the deposit");
            lines.Add($"{members[i]} ({address}) deposited {Eur(premium)}: tx {deposit.TxHash}, block {deposit.Block}");
        }

        _record["members"] = memberRecord;
        var deposits = new JsonArray();
        foreach (var deposit in await Client.DepositsAsync(cancellationToken).ConfigureAwait(false))
        {
            var member = members.Single(m => Convert.ToHexStringLower(TreasuryMessages.MemberRef(m)) == Convert.ToHexStringLower(deposit.MemberRef));
            var minor = (long)(deposit.Amount / Config.UnitsPerMinorUnit);
            var reference = ChainSettlement.DepositReference(Config.Caip2, deposit.TxHash, deposit.LogIndex);
            await engine.RecordPremiumAsync(DemoRun.Pool, member, minor, reference, admin.Sign(LedgerEntry.Premium, RegistryChange.Premium(member, minor, reference)), cancellationToken)
                .ConfigureAwait(false);
            deposits.Add(new JsonObject { ["member"] = member, ["amount"] = deposit.Amount.ToString(CultureInfo.InvariantCulture), ["tx"] = deposit.TxHash, ["ref"] = reference });
        }

        _record["deposits"] = deposits;
        lines.Add($"{deposits.Count} premium entries from the Deposited events (ref = chain:tx:log index, admin-signed); treasury balance {await TokenBalanceAsync(Config.Treasury, cancellationToken).ConfigureAwait(false)}");
        return string.Join('\n', lines);
    }

    /// <summary>Settles the signed payout through the custody nodes (the same pass as <c>serve --chain</c>) and checks the member's balance rose by it.</summary>
    public async Task<string> SettleAsync(ClaimsEngine engine, string member, long payout, CancellationToken cancellationToken)
    {
        var address = _addresses[member];
        var before = await Client.BalanceAsync(Config.Token, address, cancellationToken).ConfigureAwait(false);
        var (settled, _, waiting) = await new ChainSettlement(engine, Client, Config, Keys).SettleAsync(cancellationToken).ConfigureAwait(false);
        if (settled != 1)
        {
            throw new InvalidOperationException($"expected one payout settled on chain, got {settled}: {string.Join("; ", waiting)}");
        }

        var after = await Client.BalanceAsync(Config.Token, address, cancellationToken).ConfigureAwait(false);
        if (after - before != Config.ToTokenUnits(payout))
        {
            throw new InvalidOperationException($"{member}'s balance rose by {after - before} units, not {Config.ToTokenUnits(payout)}");
        }

        var entry = engine.LedgerEntries(DemoRun.Pool).Last(e => e.Kind == LedgerEntry.PayoutSettled);
        ((_record["payouts"] ??= new JsonArray()).AsArray()).Add(entry.Body.DeepClone());
        return $"claim {entry.Body["claim"]} paid by the treasury: {Eur(payout)} ({entry.Body["amount"]} units) to {member} {address}\n"
            + $"tx {entry.Body["tx"]}, block {entry.Body["block"]}; payout_settled entry {entry.Sequence}\n"
            + $"balances: {string.Join(", ", await Task.WhenAll(_addresses.Select(async a => $"{a.Key} {await TokenBalanceAsync(a.Value, cancellationToken).ConfigureAwait(false)}")).ConfigureAwait(false))}, "
            + $"treasury {await TokenBalanceAsync(Config.Treasury, cancellationToken).ConfigureAwait(false)}";
    }

    /// <summary>
    /// Anchors the ledger's checkpoints, cross-checks ledger.json with the chain (<c>ledger verify --chain</c>),
    /// then reads it back with plain JSON-RPC (eth_call balanceOf, eth_getLogs per event) and writes chain.json.
    /// </summary>
    public async Task<string> AnchorAndCheckAsync(ClaimsEngine engine, string outDir, CancellationToken cancellationToken)
    {
        var anchored = await new ChainSettlement(engine, Client, Config, Keys).AnchorAsync(cancellationToken).ConfigureAwait(false);
        var anchors = await Client.AnchorsAsync(cancellationToken).ConfigureAwait(false);
        var export = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(outDir, "ledger.json"), cancellationToken).ConfigureAwait(false))!.AsObject();
        var check = await ChainLedgerCheck.VerifyAsync(export, Client, cancellationToken).ConfigureAwait(false);
        if (!check.IsValid || anchors.Count == 0)
        {
            throw new InvalidOperationException($"ledger.json disagrees with the chain: {check.Detail} ({anchors.Count} anchor(s))");
        }

        _record["anchors"] = new JsonArray([.. anchors.Select(a => (JsonNode)new JsonObject
        {
            ["index"] = a.Index, ["payload"] = System.Text.Encoding.UTF8.GetString(a.Payload), ["sha256"] = Convert.ToHexStringLower(a.PayloadHash), ["tx"] = a.TxHash, ["block"] = a.Block,
        })]);

        // What any JSON-RPC client sees (VERIFY.md shows the same calls with curl).
        using var http = new HttpClient();
        var flood = _addresses.First().Value;
        var balance = await RpcAsync(http, "eth_call", [new JsonObject { ["to"] = Config.Token, ["data"] = "0x70a08231" + flood[2..].PadLeft(64, '0') }, "latest"], cancellationToken).ConfigureAwait(false);
        var counts = new List<string>();
        foreach (var signature in Events)
        {
            var logs = await RpcAsync(http, "eth_getLogs", [new JsonObject { ["address"] = Config.Treasury, ["fromBlock"] = "0x0", ["topics"] = new JsonArray(Topic(signature)) }], cancellationToken)
                .ConfigureAwait(false);
            counts.Add($"{logs.AsArray().Count} {signature[..signature.IndexOf('(', StringComparison.Ordinal)]}");
        }

        await File.WriteAllTextAsync(Path.Combine(outDir, "chain.json"), _record.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", cancellationToken).ConfigureAwait(false);
        var last = anchors[^1];
        return $"{anchored} checkpoint(s) anchored; last: {System.Text.Encoding.UTF8.GetString(last.Payload)} in tx {last.TxHash}, block {last.Block}\n"
            + $"ledger verify --chain: {check.Detail}\n"
            + $"plain JSON-RPC: balanceOf({_addresses.First().Key}) = {BigInteger.Parse("0" + balance.GetValue<string>()[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture)} units; eth_getLogs: {string.Join(", ", counts)}\n"
            + "chain.json: addresses, deposits, the settlements and the anchors (the chain stops with the demo)";
    }

    public void Dispose() => _anvil.Dispose();

    private async Task<JsonNode> RpcAsync(HttpClient http, string method, JsonArray parameters, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsJsonAsync(_anvil.RpcUrl, new JsonObject { ["jsonrpc"] = "2.0", ["id"] = 1, ["method"] = method, ["params"] = parameters }, cancellationToken)
            .ConfigureAwait(false);
        var body = await response.Content.ReadFromJsonAsync<JsonObject>(cancellationToken).ConfigureAwait(false);
        return body?["result"] ?? throw new InvalidOperationException($"{method}: {body?["error"]?.ToJsonString() ?? "no answer"}");
    }

    private async Task<string> TokenBalanceAsync(string owner, CancellationToken cancellationToken) =>
        Eur((long)(await Client.BalanceAsync(Config.Token, owner, cancellationToken).ConfigureAwait(false) / Config.UnitsPerMinorUnit));

    private static string Topic(string signature) => "0x" + Convert.ToHexStringLower(Sha3Keccack.Current.CalculateHash(System.Text.Encoding.UTF8.GetBytes(signature)));

    private static string Eur(long minor) => (minor / 100m).ToString("0.00", CultureInfo.InvariantCulture) + " EUR";

    private static ChainTx Require(ChainTx tx, string what) => tx.Succeeded ? tx : throw new InvalidOperationException($"{what} failed on chain: {tx}");
}
