using System.Globalization;
using System.Numerics;
using System.Text;
using Nethereum.ABI.FunctionEncoding.Attributes;
using Nethereum.Contracts;
using Nethereum.Hex.HexTypes;
using Nethereum.JsonRpc.Client;
using Nethereum.RPC.Eth.DTOs;
using Nethereum.Util;
using Nethereum.Web3;
using Nethereum.Web3.Accounts;

namespace ShareVault.Service.Chain;

/// <summary>What a transaction came to: mined (with hash, block, gas) or refused with the contract's error name.</summary>
public sealed record ChainTx(bool Succeeded, string? TxHash, long Block, long GasUsed, string? Error)
{
    public static ChainTx Refused(string error) => new(false, null, 0, 0, error);

    public override string ToString() => Succeeded ? $"tx {TxHash} in block {Block} ({GasUsed} gas)" : $"refused: {Error}";
}

/// <summary>A payout as the contract recorded it (PaidOut event).</summary>
public sealed record ChainPayout(byte[] ClaimHash, string Token, string To, BigInteger Amount, string TxHash, long Block);

/// <summary>A premium paid into the treasury (Deposited event).</summary>
public sealed record ChainDeposit(string Token, string From, byte[] MemberRef, BigInteger Amount, string TxHash, long Block, long LogIndex);

/// <summary>A checkpoint anchored in the treasury (CheckpointAnchored event): the signed checkpoint payload.</summary>
public sealed record ChainAnchor(long Index, byte[] PayloadHash, byte[] Payload, string TxHash, long Block);

/// <summary>
/// JSON-RPC access to one PoolTreasury (Nethereum): deploys it and the test token, sends payouts,
/// anchors and rotations, reads its state and events. Every send is simulated first (eth_call), so
/// a refused one costs nothing and names the contract's custom error; network failures throw
/// (<see cref="RpcClientUnknownException"/> and friends: transient, the caller retries).
/// The sender's key only pays gas: it can move no pool funds.
/// </summary>
public sealed class TreasuryClient
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> ErrorNames = new(LoadErrorNames);

    private readonly Web3 _web3;
    private readonly Account? _account;

    /// <param name="senderKey">The hex private key that pays gas; null for a read-only client.</param>
    public TreasuryClient(string rpcUrl, string? senderKey, long chainId, string treasury)
    {
        ArgumentException.ThrowIfNullOrEmpty(rpcUrl);
        _account = senderKey is null ? null : new Account(senderKey, chainId);
        _web3 = _account is null ? new Web3(rpcUrl) : new Web3(_account, rpcUrl);
        ChainId = chainId;
        Address = treasury;
    }

    public Account Account => _account ?? throw new InvalidOperationException("This treasury client is read-only (no sender key)");

    public long ChainId { get; }

    /// <summary>The treasury's address (may be empty before <see cref="DeployAsync"/>).</summary>
    public string Address { get; private set; }

    public Web3 Web3 => _web3;

    /// <summary>The chain id the node reports (eth_chainId).</summary>
    public static async Task<long> ChainIdAsync(string rpcUrl, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var web3 = new Web3(rpcUrl);
        return (long)(await web3.Eth.ChainId.SendRequestAsync().ConfigureAwait(false)).Value;
    }

    // ------------------------------------------------------------------ deployment

    public async Task<ChainTx> DeployAsync(BigInteger cap, IReadOnlyList<ChainPoolKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var deployment = new TreasuryDeployment { Cap = cap, Keys = [.. keys.Select(k => k.ToParam())] };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var receipt = await _web3.Eth.GetContractDeploymentHandler<TreasuryDeployment>().SendRequestAndWaitForReceiptAsync(deployment, cts).ConfigureAwait(false);
        Address = receipt.ContractAddress;
        return Mined(receipt);
    }

    /// <summary>Deploys the test stablecoin (dev chains); the sender is its minter.</summary>
    public async Task<string> DeployStablecoinAsync(CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var receipt = await _web3.Eth.GetContractDeploymentHandler<StablecoinDeployment>()
            .SendRequestAndWaitForReceiptAsync(new StablecoinDeployment(), cts).ConfigureAwait(false);
        return receipt.ContractAddress;
    }

    public Task<ChainTx> MintAsync(string token, string to, BigInteger amount, CancellationToken cancellationToken) =>
        SendAsync(token, new MintFunction { To = to, Amount = amount }, simulate: true, cancellationToken);

    /// <summary>A member's premium: approve the treasury, then deposit (both from this client's account).</summary>
    public async Task<ChainTx> DepositAsync(string token, BigInteger amount, string memberId, CancellationToken cancellationToken)
    {
        var approved = await SendAsync(token, new ApproveFunction { Spender = Address, Amount = amount }, simulate: true, cancellationToken).ConfigureAwait(false);
        if (!approved.Succeeded)
        {
            return approved;
        }

        return await SendAsync(Address, new DepositFunction { Token = token, Amount = amount, Member = TreasuryMessages.MemberRef(memberId) }, simulate: true, cancellationToken).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ pool-key operations

    /// <summary>Pays claim <paramref name="claimHash"/>; <paramref name="simulate"/> false sends even what eth_call refuses (tests).</summary>
    public Task<ChainTx> PayoutAsync(byte[] claimHash, string token, string to, BigInteger amount, SignatureParam signature, CancellationToken cancellationToken, bool simulate = true) =>
        SendAsync(Address, new PayoutFunction { Claim = claimHash, Token = token, To = to, Amount = amount, Sig = signature }, simulate, cancellationToken);

    public Task<ChainTx> AnchorAsync(byte[] payload, SignatureParam signature, CancellationToken cancellationToken) =>
        SendAsync(Address, new AnchorFunction { Payload = payload, Sig = signature }, simulate: true, cancellationToken);

    public Task<ChainTx> RotateAsync(BigInteger newCap, IReadOnlyList<ChainPoolKey> keys, SignatureParam signature, CancellationToken cancellationToken) =>
        SendAsync(Address, new RotateFunction { NewCap = newCap, Keys = [.. keys.Select(k => k.ToParam())], Sig = signature }, simulate: true, cancellationToken);

    // ------------------------------------------------------------------ reads

    public Task<byte[]> PayoutMessageAsync(byte[] claimHash, string token, string to, BigInteger amount, CancellationToken cancellationToken) =>
        QueryAsync<PayoutMessageFunction, byte[]>(Address, new PayoutMessageFunction { Claim = claimHash, Token = token, To = to, Amount = amount }, cancellationToken);

    public Task<byte[]> RotationMessageAsync(BigInteger newCap, IReadOnlyList<ChainPoolKey> keys, CancellationToken cancellationToken) =>
        QueryAsync<RotationMessageFunction, byte[]>(Address, new RotationMessageFunction { NewCap = newCap, Keys = [.. keys.Select(k => k.ToParam())] }, cancellationToken);

    public Task<byte[]> KeyHashAsync(ChainPoolKey key, CancellationToken cancellationToken) =>
        QueryAsync<KeyHashFunction, byte[]>(Address, new KeyHashFunction { Key = key.ToParam() }, cancellationToken);

    public Task<bool> IsPaidAsync(byte[] claimHash, CancellationToken cancellationToken) =>
        QueryAsync<PaidFunction, bool>(Address, new PaidFunction { Claim = claimHash }, cancellationToken);

    public async Task<long> AnchoredAtAsync(byte[] payloadHash, CancellationToken cancellationToken) =>
        (long)await QueryAsync<AnchoredAtFunction, BigInteger>(Address, new AnchoredAtFunction { PayloadHash = payloadHash }, cancellationToken).ConfigureAwait(false);

    public async Task<long> EpochAsync(CancellationToken cancellationToken) =>
        (long)await QueryAsync<EpochFunction, ulong>(Address, new EpochFunction(), cancellationToken).ConfigureAwait(false);

    public Task<BigInteger> PayoutCapAsync(CancellationToken cancellationToken) =>
        QueryAsync<PayoutCapFunction, BigInteger>(Address, new PayoutCapFunction(), cancellationToken);

    public Task<BigInteger> BalanceAsync(string token, string owner, CancellationToken cancellationToken) =>
        QueryAsync<BalanceOfFunction, BigInteger>(token, new BalanceOfFunction { Owner = owner }, cancellationToken);

    public async Task<int> DecimalsAsync(string token, CancellationToken cancellationToken) =>
        await QueryAsync<DecimalsFunction, byte>(token, new DecimalsFunction(), cancellationToken).ConfigureAwait(false);

    public async Task<IReadOnlyList<ChainPayout>> PayoutsAsync(CancellationToken cancellationToken)
    {
        var logs = await EventsAsync<PaidOutEvent>(cancellationToken).ConfigureAwait(false);
        return [.. logs.Select(l => new ChainPayout(l.Event.Claim, l.Event.Token, l.Event.To, l.Event.Amount, l.Log.TransactionHash, (long)l.Log.BlockNumber.Value))];
    }

    public async Task<IReadOnlyList<ChainDeposit>> DepositsAsync(CancellationToken cancellationToken)
    {
        var logs = await EventsAsync<DepositedEvent>(cancellationToken).ConfigureAwait(false);
        return [.. logs.Select(l => new ChainDeposit(l.Event.Token, l.Event.From, l.Event.Member, l.Event.Amount, l.Log.TransactionHash, (long)l.Log.BlockNumber.Value, (long)l.Log.LogIndex.Value))];
    }

    public async Task<IReadOnlyList<ChainAnchor>> AnchorsAsync(CancellationToken cancellationToken)
    {
        var logs = await EventsAsync<CheckpointAnchoredEvent>(cancellationToken).ConfigureAwait(false);
        return [.. logs.Select(l => new ChainAnchor((long)l.Event.Index, l.Event.PayloadHash, l.Event.Payload, l.Log.TransactionHash, (long)l.Log.BlockNumber.Value))];
    }

    /// <summary>The receipt of a transaction sent earlier, or null while it is not mined (or unknown).</summary>
    public async Task<TransactionReceipt?> ReceiptAsync(string txHash, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await _web3.Eth.Transactions.GetTransactionReceipt.SendRequestAsync(txHash).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ plumbing

    private async Task<List<EventLog<TEvent>>> EventsAsync<TEvent>(CancellationToken cancellationToken)
        where TEvent : IEventDTO, new()
    {
        cancellationToken.ThrowIfCancellationRequested();
        var handler = _web3.Eth.GetEvent<TEvent>(Address);
        return await handler.GetAllChangesAsync(handler.CreateFilterInput(BlockParameter.CreateEarliest(), BlockParameter.CreateLatest())).ConfigureAwait(false);
    }

    private async Task<TOut> QueryAsync<TFunction, TOut>(string contract, TFunction function, CancellationToken cancellationToken)
        where TFunction : FunctionMessage, new()
    {
        cancellationToken.ThrowIfCancellationRequested();
        return await _web3.Eth.GetContractQueryHandler<TFunction>().QueryAsync<TOut>(contract, function).ConfigureAwait(false);
    }

    private async Task<ChainTx> SendAsync<TFunction>(string contract, TFunction function, bool simulate, CancellationToken cancellationToken)
        where TFunction : FunctionMessage, new()
    {
        function.FromAddress = Account.Address;
        if (simulate)
        {
            var refusal = await SimulateAsync(contract, function, cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                return ChainTx.Refused(refusal);
            }
        }
        else
        {
            // Sending what eth_call refuses: no estimate is possible, so a fixed budget.
            function.Gas = 3_000_000;
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var receipt = await _web3.Eth.GetContractTransactionHandler<TFunction>().SendRequestAndWaitForReceiptAsync(contract, function, cts).ConfigureAwait(false);
        return Mined(receipt);
    }

    /// <summary>eth_call of the transaction: null when it would succeed, else the contract's error name.</summary>
    private async Task<string?> SimulateAsync<TFunction>(string contract, TFunction function, CancellationToken cancellationToken)
        where TFunction : FunctionMessage, new()
    {
        cancellationToken.ThrowIfCancellationRequested();
        var input = function.CreateCallInput(contract);
        try
        {
            await _web3.Eth.Transactions.Call.SendRequestAsync(input, BlockParameter.CreatePending()).ConfigureAwait(false);
            return null;
        }
        catch (RpcResponseException e) when (e.RpcError is { } error)
        {
            return DecodeRevert(error.Data?.ToString()) ?? error.Message;
        }
        catch (SmartContractCustomErrorRevertException e)
        {
            return DecodeRevert(e.ExceptionEncodedData) ?? "reverted";
        }
    }

    /// <summary>The custom error's name from revert data (0x + 4-byte selector + arguments).</summary>
    public static string? DecodeRevert(string? data)
    {
        if (data is null)
        {
            return null;
        }

        var hex = data.Trim('"');
        if (hex.StartsWith("0x", StringComparison.Ordinal) && hex.Length >= 10)
        {
            return ErrorNames.Value.TryGetValue(hex[2..10].ToLowerInvariant(), out var name) ? name : "0x" + hex[2..10];
        }

        return hex.Length == 0 || hex == "0x" ? "reverted" : null;
    }

    private static Dictionary<string, string> LoadErrorNames()
    {
        var names = new Dictionary<string, string>();
        foreach (var contract in new[] { "PoolTreasury", "TestStablecoin" })
        {
            foreach (var item in TreasuryArtefact.Abi(contract).Select(n => n!.AsObject()).Where(n => n["type"]!.GetValue<string>() == "error"))
            {
                var name = item["name"]!.GetValue<string>();
                var types = string.Join(',', item["inputs"]!.AsArray().Select(i => i!["type"]!.GetValue<string>()));
                var selector = Convert.ToHexStringLower(Sha3Keccack.Current.CalculateHash(Encoding.ASCII.GetBytes($"{name}({types})"))[..4]);
                names[selector] = name;
            }
        }

        names["08c379a0"] = "Error(string)";
        names["4e487b71"] = "Panic(uint256)";
        return names;
    }

    private static ChainTx Mined(TransactionReceipt receipt) =>
        new(receipt.Status?.Value == 1, receipt.TransactionHash, (long)receipt.BlockNumber.Value, (long)receipt.GasUsed.Value, receipt.Status?.Value == 1 ? null : "reverted on chain");
}
