using System.CommandLine;
using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Pools;
using ShareVault.Custody.Keys;
using ShareVault.Service.Chain;

namespace ShareVault.Cli;

/// <summary>
/// <c>sharevault chain deploy|status|address|settle|anchor</c>: a pool's PoolTreasury contract on an
/// EVM chain (docs/treasury.md). The sender key only pays gas; every payout, anchor and rotation is
/// authorised by the pool's threshold key, checked by the contract.
/// </summary>
public static class ChainCommands
{
    private static readonly Option<string> PoolOption = new("--pool") { Required = true, Description = "Pool id" };

    private static readonly Option<string?> RpcOption = new("--rpc")
    {
        Description = "JSON-RPC URL of the chain (default: the one the treasury was deployed with)",
    };

    private static readonly Option<FileInfo?> SenderKeyOption = new("--sender-key-file")
    {
        Description = "File holding the hex private key of the account that pays gas (it can move no pool funds); default: $SHAREVAULT_CHAIN_KEY_FILE, or anvil's public dev account on chain 31337",
    };

    public static Command Build()
    {
        var chain = new Command("chain", "The pool's treasury contract: deploy it, show it, register payout addresses, settle payouts, anchor checkpoints");
        chain.Subcommands.Add(Deploy());
        chain.Subcommands.Add(Status());
        chain.Subcommands.Add(Bind());
        chain.Subcommands.Add(Address());
        chain.Subcommands.Add(Settle());
        chain.Subcommands.Add(Anchor());
        return chain;
    }

    private static Command Deploy()
    {
        var rpc = new Option<string>("--rpc") { Required = true, Description = "JSON-RPC URL of the chain" };
        var token = new Option<string?>("--token") { Description = "ERC-20 token the pool holds (default: deploy the test stablecoin, for dev chains)" };
        var fund = new Option<long>("--fund") { Description = "With the test stablecoin: mint this many minor units into the treasury", DefaultValueFactory = _ => 0 };
        var command = new Command("deploy", "Deploy the pool's PoolTreasury with the pool key's moduli and the pool's largest payout as its cap; writes DATA_DIR/chain/POOL.json")
        {
            PoolOption, rpc, token, fund, SenderKeyOption,
        };
        command.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var dataDir = CliContext.ReadableDataDir(result);
            var poolId = result.GetValue(PoolOption)!;
            PoolInfo pool = null!;
            await ClaimsCommands.WithEngineAsync(result, e =>
            {
                pool = e.GetPool(poolId) ?? throw new ArgumentException($"No pool '{poolId}'");
                return Task.CompletedTask;
            }).ConfigureAwait(false);
            var keys = ChainPoolKey.FromRecord(new KeyCatalog(dataDir).Load(pool.KeyName));
            var url = result.GetValue(rpc)!;
            var sender = await SenderKeyAsync(result, url, ct).ConfigureAwait(false);
            var config = await Rpc(() => TreasuryDeployer.DeployAsync(url, sender, poolId, pool.MaxPayout, keys, result.GetValue(token), ct)).ConfigureAwait(false);
            config.Save(dataDir);
            if (result.GetValue(fund) > 0 && result.GetValue(token) is null)
            {
                var client = new TreasuryClient(url, sender, config.ChainId, config.Treasury);
                var minted = await Rpc(() => client.MintAsync(config.Token, config.Treasury, config.ToTokenUnits(result.GetValue(fund)), ct)).ConfigureAwait(false);
                if (!minted.Succeeded)
                {
                    throw new InvalidOperationException($"Funding the treasury failed: {minted}");
                }
            }

            Console.WriteLine($"treasury {config.Treasury} on {config.Caip2} for pool {poolId}: token {config.Token}, {keys.Count} key(s), cap {config.ToTokenUnits(pool.MaxPayout)} token units");
            Console.WriteLine($"  -> {ChainConfig.PathFor(dataDir, poolId)}");

            // The ledger binds the pool to its treasury (custody nodes sign payout messages for it only);
            // in an administered pool the administrator signs that entry: 'chain bind --admin-sig'.
            try
            {
                await ClaimsCommands.WithEngineAsync(result, e => e.BindTreasuryAsync(poolId, TreasuryBody(config), null, ct)).ConfigureAwait(false);
                Console.WriteLine($"  ledger: pool {poolId} bound to treasury {config.Treasury} (treasury entry)");
            }
            catch (ClaimsException e) when (e.Error == ClaimsError.Forbidden)
            {
                Console.WriteLine($"  ledger: pool {poolId} is administered: an administrator signs the treasury entry ('sharevault chain bind --pool {poolId} --print-body', 'sharevault admin sign --kind treasury', 'sharevault chain bind --pool {poolId} --admin-sig FILE')");
            }

            return CliContext.Ok;
        }));
        return command;
    }

    private static Command Status()
    {
        var command = new Command("status", "The treasury's chain, key epoch, cap, balance, payouts and anchors, and the pool's payouts waiting for settlement") { PoolOption, RpcOption };
        command.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var (config, url) = Load(result);
            var client = new TreasuryClient(url, null, config.ChainId, config.Treasury);
            IReadOnlyList<PayoutToSettle> waiting = [];
            await ClaimsCommands.WithEngineAsync(result, e =>
            {
                waiting = e.PayoutsToSettle(config.Pool);
                return Task.CompletedTask;
            }).ConfigureAwait(false);
            var (epoch, cap, balance, payouts, anchors) = await Rpc(async () => (
                await client.EpochAsync(ct).ConfigureAwait(false),
                await client.PayoutCapAsync(ct).ConfigureAwait(false),
                await client.BalanceAsync(config.Token, config.Treasury, ct).ConfigureAwait(false),
                await client.PayoutsAsync(ct).ConfigureAwait(false),
                await client.AnchorsAsync(ct).ConfigureAwait(false))).ConfigureAwait(false);
            Console.WriteLine($"pool {config.Pool}: treasury {config.Treasury} on {config.Caip2}");
            Console.WriteLine($"  token {config.Token}: balance {balance} units ({Minor(config, balance)} in minor units)");
            Console.WriteLine($"  key epoch {epoch}, cap {cap} units per payout");
            Console.WriteLine($"  {payouts.Count} payout(s) on chain, {anchors.Count} checkpoint(s) anchored" + (anchors.Count > 0 ? $", last in block {anchors[^1].Block}" : ""));
            foreach (var p in waiting)
            {
                Console.WriteLine($"  waiting: {p.ClaimId} ({p.Amount} {p.Currency} to {p.Address ?? "no address registered for " + p.MemberId})");
            }

            return CliContext.Ok;
        }));
        return command;
    }

    private static Command Bind()
    {
        var command = new Command("bind", "Bind the pool to the treasury in DATA_DIR/chain/POOL.json with a treasury ledger entry (admin-signed in an administered pool); 'chain deploy' does it for an unadministered pool")
        {
            PoolOption, AdminCommands.AdminSig, AdminCommands.PrintBody,
        };
        command.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var (config, _) = Load(result, requireRpc: false);
            if (result.GetValue(AdminCommands.PrintBody))
            {
                Console.WriteLine(TreasuryBody(config).ToJsonString());
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, ct).ConfigureAwait(false);
            var recorded = false;
            await ClaimsCommands.WithEngineAsync(result, async e => recorded = await e.BindTreasuryAsync(config.Pool, TreasuryBody(config), admin, ct).ConfigureAwait(false)).ConfigureAwait(false);
            Console.WriteLine(recorded ? $"pool {config.Pool} bound to treasury {config.Treasury} on {config.Caip2}" : $"pool {config.Pool} is already bound to treasury {config.Treasury}");
            return CliContext.Ok;
        }));
        return command;
    }

    /// <summary>The <c>treasury</c> entry's body for a deployed treasury.</summary>
    public static JsonObject TreasuryBody(ChainConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return PoolRegistry.TreasuryBody(config.ChainId, config.Treasury, config.Token, config.UnitsPerMinorUnit);
    }

    private static Command Address()
    {
        var member = new Option<string>("--member") { Required = true, Description = "Member id" };
        var address = new Option<string>("--address") { Required = true, Description = "0x-prefixed address the member's payouts go to" };
        var command = new Command("address", "Register the address a member's on-chain payouts go to (a payout_address ledger entry; admin-signed in an administered pool)")
        {
            PoolOption, member, address, AdminCommands.AdminSig, AdminCommands.PrintBody,
        };
        command.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            if (result.GetValue(AdminCommands.PrintBody))
            {
                Console.WriteLine(ClaimsEngine.PayoutAddressBody(result.GetValue(member)!, result.GetValue(address)!).ToJsonString());
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, ct).ConfigureAwait(false);
            await ClaimsCommands.WithEngineAsync(result, e => e.RegisterPayoutAddressAsync(result.GetValue(PoolOption)!, result.GetValue(member)!, result.GetValue(address)!, admin, ct)).ConfigureAwait(false);
            Console.WriteLine($"payouts of {result.GetValue(member)} in {result.GetValue(PoolOption)} go to {result.GetValue(address)}");
            return CliContext.Ok;
        }));
        return command;
    }

    private static Command Settle()
    {
        var command = new Command("settle", "Settle the pool's signed payouts on its treasury once (what serve --chain does continuously); payouts already paid on chain are recorded from their events")
        {
            PoolOption, RpcOption, SenderKeyOption,
        };
        command.SetAction((result, ct) => CliContext.RunAsync(() => WithSettlementAsync(result, async s =>
        {
            var (settled, reconciled, waiting) = await s.SettleAsync(ct).ConfigureAwait(false);
            Console.WriteLine($"{settled} settled, {reconciled} reconciled from chain events");
            foreach (var w in waiting)
            {
                Console.WriteLine("  waiting: " + w);
            }

            return CliContext.Ok;
        }, checkpointFirst: false, ct)));
        return command;
    }

    private static Command Anchor()
    {
        var command = new Command("anchor", "Sign a checkpoint over the ledger head (unless it is signed) and anchor every checkpoint the treasury does not hold yet")
        {
            PoolOption, RpcOption, SenderKeyOption,
        };
        command.SetAction((result, ct) => CliContext.RunAsync(() => WithSettlementAsync(result, async s =>
        {
            var anchored = await s.AnchorAsync(ct).ConfigureAwait(false);
            Console.WriteLine($"{anchored} checkpoint(s) anchored in {s.Config.Treasury}");
            return CliContext.Ok;
        }, checkpointFirst: true, ct)));
        return command;
    }

    /// <summary>The serve --chain part: one settlement loop per pool with a treasury in the data folder.</summary>
    public static IReadOnlyList<ChainSettlement> ForServe(string dataDir, string rpcUrl, string? senderKey, ClaimsEngine engine, Microsoft.Extensions.Logging.ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var catalog = new KeyCatalog(dataDir);
        var result = new List<ChainSettlement>();
        foreach (var config in ChainConfig.All(dataDir))
        {
            var pool = engine.GetPool(config.Pool) ?? throw new ArgumentException($"{ChainConfig.PathFor(dataDir, config.Pool)} names pool '{config.Pool}', which this database does not hold");
            var client = new TreasuryClient(rpcUrl, senderKey ?? DevKeyFor(config.ChainId), config.ChainId, config.Treasury);
            result.Add(new ChainSettlement(engine, client, config, ChainPoolKey.FromRecord(catalog.Load(pool.KeyName)), logger));
        }

        return result.Count > 0 ? result : throw new ArgumentException($"--chain: no treasury deployed from {dataDir} ('sharevault chain deploy' first)");
    }

    /// <summary>The sender key from --sender-key-file or $SHAREVAULT_CHAIN_KEY_FILE; null when neither is given.</summary>
    public static string? ReadSenderKey(FileInfo? file)
    {
        var path = file?.FullName ?? Environment.GetEnvironmentVariable("SHAREVAULT_CHAIN_KEY_FILE");
        if (path is null)
        {
            return null;
        }

        // Checked here, so that a malformed key never reaches a library whose error might quote it.
        var key = File.ReadAllText(path).Trim();
        var hex = key.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? key[2..] : key;
        return hex.Length == 64 && hex.All(char.IsAsciiHexDigit)
            ? key
            : throw new ArgumentException($"{path}: not a secp256k1 private key (64 hex digits, optionally 0x-prefixed); its content is not shown");
    }

    /// <summary>
    /// ledger verify --chain: the export against its pool's treasury (from --treasury, the export's
    /// payout_settled entries, or DATA_DIR/chain/POOL.json).
    /// </summary>
    public static async Task<int> CrossCheckAsync(string exportText, string rpcUrl, string? treasury, string dataDir, CancellationToken cancellationToken)
    {
        var export = JsonNode.Parse(exportText)!.AsObject();
        var pool = export["pool"]!["id"]!.GetValue<string>();
        treasury ??= export["entries"]!.AsArray().Select(e => e!.AsObject())
                .Where(e => e["kind"]!.GetValue<string>() == LedgerEntry.PayoutSettled)
                .Select(e => e["body"]!["treasury"]!.GetValue<string>()).LastOrDefault()
            ?? ChainConfig.Load(dataDir, pool)?.Treasury
            ?? throw new ArgumentException($"--chain: name the treasury of pool '{pool}' with --treasury");
        var check = await Rpc(async () =>
        {
            var chainId = await TreasuryClient.ChainIdAsync(rpcUrl, cancellationToken).ConfigureAwait(false);
            return await ChainLedgerCheck.VerifyAsync(export, new TreasuryClient(rpcUrl, null, chainId, treasury), cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
        foreach (var note in check.Notes)
        {
            Console.WriteLine("  note: " + note);
        }

        (check.IsValid ? Console.Out : Console.Error).WriteLine(check.IsValid ? "chain: " + check.Detail : "sharevault: ledger disagrees with the chain: " + check.Detail);
        return check.IsValid ? CliContext.Ok : CliContext.Failed;
    }

    private static async Task<int> WithSettlementAsync(ParseResult result, Func<ChainSettlement, Task<int>> work, bool checkpointFirst, CancellationToken ct)
    {
        var dataDir = CliContext.ReadableDataDir(result);
        var (config, url) = Load(result);
        var sender = ReadSenderKey(result.GetValue(SenderKeyOption)) ?? DevKeyFor(config.ChainId);
        var code = CliContext.Failed;
        await ClaimsCommands.WithEngineAsync(result, async e =>
        {
            if (checkpointFirst)
            {
                await e.CheckpointAsync(config.Pool, force: true, ct).ConfigureAwait(false);
            }

            var pool = e.GetPool(config.Pool) ?? throw new ArgumentException($"No pool '{config.Pool}'");
            var settlement = new ChainSettlement(e, new TreasuryClient(url, sender, config.ChainId, config.Treasury), config, ChainPoolKey.FromRecord(new KeyCatalog(dataDir).Load(pool.KeyName)));
            code = await Rpc(() => work(settlement)).ConfigureAwait(false);
        }).ConfigureAwait(false);
        return code;
    }

    private static (ChainConfig Config, string Url) Load(ParseResult result, bool requireRpc = true)
    {
        var dataDir = CliContext.ReadableDataDir(result);
        var pool = result.GetValue(PoolOption)!;
        var config = ChainConfig.Load(dataDir, pool) ?? throw new ArgumentException($"Pool '{pool}' has no treasury deployed from {dataDir} ('sharevault chain deploy')");
        var url = result.GetValue(RpcOption) ?? config.RpcUrl ?? (requireRpc ? throw new ArgumentException("--rpc is required") : string.Empty);
        return (config, url);
    }

    private static async Task<string> SenderKeyAsync(ParseResult result, string url, CancellationToken ct) =>
        ReadSenderKey(result.GetValue(SenderKeyOption)) ?? DevKeyFor(await Rpc(() => TreasuryClient.ChainIdAsync(url, ct)).ConfigureAwait(false));

    private static string DevKeyFor(long chainId) =>
        chainId == AnvilProcess.DevChainId
            ? AnvilProcess.DevAccountKey
            : throw new ArgumentException($"Chain {chainId} is not a dev chain: give the gas-paying account with --sender-key-file or $SHAREVAULT_CHAIN_KEY_FILE");

    private static string Minor(ChainConfig config, BigInteger units) =>
        (units / config.UnitsPerMinorUnit).ToString(CultureInfo.InvariantCulture);

    /// <summary>Chain failures as one-line reasons (CliContext prints InvalidOperationException messages).</summary>
    private static async Task<T> Rpc<T>(Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (Exception e) when (ChainSettlement.IsTransient(e))
        {
            throw new InvalidOperationException("chain: " + e.Message, e);
        }
    }
}
