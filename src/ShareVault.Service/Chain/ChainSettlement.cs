using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;

namespace ShareVault.Service.Chain;

/// <summary>What one settlement pass did.</summary>
public sealed record SettlementPass(int Settled, int Reconciled, int Anchored, IReadOnlyList<string> Waiting, int Premiums = 0)
{
    public override string ToString() =>
        $"{Premiums} premium(s) recorded from deposits, {Settled} settled, {Reconciled} reconciled from chain events, {Anchored} checkpoint(s) anchored" + (Waiting.Count > 0 ? $"; waiting: {string.Join("; ", Waiting)}" : "");
}

/// <summary>
/// Settles a pool's signed payouts on its PoolTreasury and anchors its checkpoints. For each payout
/// without a <c>payout_settled</c> entry: if the contract already paid the claim (a PaidOut event:
/// the service stopped after sending, or another instance sent it), the entry is recorded from the
/// event; otherwise the pool key signs the treasury's payout message (purpose <c>settlement</c>),
/// the transaction is sent, and the receipt is recorded. Nothing is lost when the chain is down or
/// a transaction fails (the payout stays waiting and the next pass tries again), and nothing is
/// paid twice: the contract refuses a second payout of a claim (AlreadyPaid), and the pass that
/// meets that refusal records the earlier payout from its event.
/// </summary>
public sealed class ChainSettlement(ClaimsEngine engine, TreasuryClient client, ChainConfig config, IReadOnlyList<ChainPoolKey> keys, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

    /// <summary>Test seam: runs after a payout is mined and before its entry is recorded (a crash there is the case reconciliation covers).</summary>
    public Func<PayoutToSettle, ChainTx, CancellationToken, Task>? AfterPayoutMined { get; init; }

    public ChainConfig Config => config;

    /// <summary>One pass: record premiums deposited on chain, reconcile, settle what waits, anchor what is not anchored.</summary>
    public async Task<SettlementPass> RunOnceAsync(CancellationToken cancellationToken)
    {
        var (premiums, unrecorded) = await RecordPremiumsAsync(cancellationToken).ConfigureAwait(false);
        var (settled, reconciled, waiting) = await SettleAsync(cancellationToken).ConfigureAwait(false);
        var anchored = await AnchorAsync(cancellationToken).ConfigureAwait(false);
        return new SettlementPass(settled, reconciled, anchored, [.. unrecorded, .. waiting], premiums);
    }

    /// <summary>The payment reference of a premium deposited on chain: CAIP-2 chain, transaction hash and log index (unique on the chain).</summary>
    public static string DepositReference(string caip2, string txHash, long logIndex) =>
        $"{caip2}:{txHash.ToLowerInvariant()}:{logIndex.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Records every <c>Deposited</c> event of the pool's token that names a member of the pool
    /// (SHA-256 of the member id) as a <c>premium</c> entry in minor units, its payment reference
    /// <see cref="DepositReference"/>: a reference counts once (the engine refuses a second premium
    /// with it, the registry fold too), so a restart or a second instance never records one twice. In
    /// an administered pool a premium needs the administrator's signature: such deposits are listed
    /// as waiting ('sharevault pool premium --ref REF --admin-sig').
    /// </summary>
    public async Task<(int Recorded, List<string> Waiting)> RecordPremiumsAsync(CancellationToken cancellationToken)
    {
        var waiting = new List<string>();
        var deposits = await client.DepositsAsync(cancellationToken).ConfigureAwait(false);
        if (deposits.Count == 0)
        {
            return (0, waiting);
        }

        var (registry, _, _) = PoolRegistry.Fold(config.Pool, engine.LedgerEntries(config.Pool));
        var members = registry.Members.Keys.ToDictionary(m => Convert.ToHexStringLower(TreasuryMessages.MemberRef(m)), m => m, StringComparer.Ordinal);
        var recorded = new HashSet<string>(engine.LedgerEntries(config.Pool).Where(e => e.Kind == LedgerEntry.Premium && e.Body["ref"] is JsonValue)
            .Select(e => e.Body["ref"]!.GetValue<string>()), StringComparer.Ordinal);
        var count = 0;
        foreach (var deposit in deposits)
        {
            var reference = DepositReference(config.Caip2, deposit.TxHash, deposit.LogIndex);
            if (recorded.Contains(reference) || !string.Equals(deposit.Token, config.Token, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (!members.TryGetValue(Convert.ToHexStringLower(deposit.MemberRef), out var member))
            {
                continue; // another pool's member, or a plain transfer: not this pool's premium
            }

            var minor = deposit.Amount / config.UnitsPerMinorUnit;
            if (minor <= 0 || minor > long.MaxValue || deposit.Amount % config.UnitsPerMinorUnit != 0)
            {
                waiting.Add($"deposit {reference} of {deposit.Amount} units is not a whole number of minor units: not recorded");
                continue;
            }

            try
            {
                await engine.RecordPremiumAsync(config.Pool, member, (long)minor, reference, null, cancellationToken).ConfigureAwait(false);
                count++;
                _logger.LogInformation("chain {Pool}: premium of {Amount} from {Member} recorded from deposit {Reference}", config.Pool, (long)minor, member, reference);
            }
            catch (ClaimsException e) when (e.Error == ClaimsError.AlreadyExists)
            {
                // Recorded meanwhile by another instance.
            }
            catch (ClaimsException e) when (e.Error == ClaimsError.Forbidden)
            {
                waiting.Add($"deposit {reference} of {(long)minor} by {member}: the pool is administered, the premium needs an admin signature ('sharevault pool premium --ref {reference} --admin-sig')");
            }
        }

        return (count, waiting);
    }

    /// <summary>Passes every <paramref name="interval"/> until cancelled; a failing pass (chain or custodians down) is logged and retried.</summary>
    public async Task RunAsync(TimeSpan interval, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(time);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var pass = await RunOnceAsync(cancellationToken).ConfigureAwait(false);
                if (pass.Settled + pass.Reconciled + pass.Anchored > 0 || pass.Waiting.Count > 0)
                {
                    _logger.LogInformation("chain {Pool}: {Pass}", config.Pool, pass);
                }
            }
            catch (Exception e) when (IsTransient(e))
            {
                _logger.LogWarning("chain {Pool}: pass failed, retrying in {Seconds} s: {Reason}", config.Pool, interval.TotalSeconds, e.Message);
            }

            try
            {
                await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Failures a later pass may not meet: the node, the network or the custodians.</summary>
    public static bool IsTransient(Exception e) =>
        e is HttpRequestException or TimeoutException or IOException or System.Net.Sockets.SocketException
            or Nethereum.JsonRpc.Client.RpcClientUnknownException or Nethereum.JsonRpc.Client.RpcClientTimeoutException
            or Nethereum.JsonRpc.Client.RpcResponseException
            || (e is ClaimsException c && c.IsTransient)
            || (e is OperationCanceledException && e.InnerException is TimeoutException);

    /// <summary>Settles (or reconciles) every signed payout that waits; returns the counts and why the rest wait.</summary>
    public async Task<(int Settled, int Reconciled, List<string> Waiting)> SettleAsync(CancellationToken cancellationToken)
    {
        var waiting = new List<string>();
        var pending = engine.PayoutsToSettle(config.Pool);
        if (pending.Count == 0)
        {
            return (0, 0, waiting);
        }

        var onChain = await PaidOnChainAsync(cancellationToken).ConfigureAwait(false);
        var (settled, reconciled) = (0, 0);
        foreach (var payout in pending)
        {
            var claimHash = TreasuryMessages.ClaimHash(payout.ClaimId);
            if (onChain.TryGetValue(Convert.ToHexStringLower(claimHash), out var paid))
            {
                await RecordAsync(payout, paid.To, paid.Amount, paid.TxHash, paid.Block, cancellationToken).ConfigureAwait(false);
                reconciled++;
                continue;
            }

            if (payout.Address is null)
            {
                waiting.Add($"{payout.ClaimId}: member '{payout.MemberId}' has registered no payout address");
                continue;
            }

            var amount = config.ToTokenUnits(payout.Amount);
            var message = TreasuryMessages.Payout(config.ChainId, config.Treasury, claimHash, config.Token, payout.Address, amount);
            // The contract's own encoding must be the one the custody nodes parse (TreasuryPayoutMessage).
            var onChainMessage = await client.PayoutMessageAsync(claimHash, config.Token, payout.Address, amount, cancellationToken).ConfigureAwait(false);
            if (!onChainMessage.AsSpan().SequenceEqual(message))
            {
                throw new InvalidOperationException($"The treasury's payoutMessage for {payout.ClaimId} differs from ShareVault's encoding: is {config.Treasury} a PoolTreasury?");
            }

            var (jws, _) = await engine.SignSettlementAsync(config.Pool, payout.ClaimId, message, cancellationToken).ConfigureAwait(false);
            var authorisation = ChainAuthorisation.FromJws(jws, message, keys)
                ?? throw new InvalidOperationException($"The pool key's signature for {payout.ClaimId} does not verify under the treasury's keys");
            var tx = await client.PayoutAsync(claimHash, config.Token, payout.Address, amount, authorisation.ToParam(), cancellationToken).ConfigureAwait(false);
            if (tx.Succeeded)
            {
                if (AfterPayoutMined is { } hook)
                {
                    await hook(payout, tx, cancellationToken).ConfigureAwait(false);
                }

                await RecordAsync(payout, payout.Address, amount, tx.TxHash!, tx.Block, cancellationToken).ConfigureAwait(false);
                settled++;
            }
            else if (tx.Error == "AlreadyPaid")
            {
                // Paid since the events were read (another instance): the next pass records it from its event.
                waiting.Add($"{payout.ClaimId}: paid on chain meanwhile, recorded on the next pass");
            }
            else
            {
                _logger.LogWarning("chain {Pool}: payout of {Claim} refused by the treasury: {Error}", config.Pool, payout.ClaimId, tx.Error);
                waiting.Add($"{payout.ClaimId}: refused by the treasury ({tx.Error})");
            }
        }

        return (settled, reconciled, waiting);
    }

    private async Task<Dictionary<string, ChainPayout>> PaidOnChainAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, ChainPayout>(StringComparer.Ordinal);
        foreach (var paid in await client.PayoutsAsync(cancellationToken).ConfigureAwait(false))
        {
            result.TryAdd(Convert.ToHexStringLower(paid.ClaimHash), paid);
        }

        return result;
    }

    private async Task RecordAsync(PayoutToSettle payout, string to, System.Numerics.BigInteger amount, string txHash, long block, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["claim"] = payout.ClaimId,
            ["chain"] = config.Caip2,
            ["treasury"] = config.Treasury.ToLowerInvariant(),
            ["token"] = config.Token.ToLowerInvariant(),
            ["to"] = to.ToLowerInvariant(),
            ["amount"] = amount.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["tx"] = txHash,
            ["block"] = block,
        };
        if (await engine.RecordSettlementAsync(config.Pool, body, cancellationToken).ConfigureAwait(false))
        {
            _logger.LogInformation("chain {Pool}: {Claim} settled in {Tx} (block {Block})", config.Pool, payout.ClaimId, txHash, block);
        }
    }

    /// <summary>Anchors every threshold-signed checkpoint of the pool that the treasury does not hold yet.</summary>
    public async Task<int> AnchorAsync(CancellationToken cancellationToken)
    {
        var anchored = 0;
        foreach (var checkpoint in engine.Checkpoints(config.Pool))
        {
            var payload = LedgerCheckpoint.Payload(checkpoint.Pool, checkpoint.Sequence, checkpoint.Hash, checkpoint.Time);
            if (await client.AnchoredAtAsync(SHA256.HashData(payload), cancellationToken).ConfigureAwait(false) != 0)
            {
                continue;
            }

            var authorisation = ChainAuthorisation.FromJws(checkpoint.Jws, payload, keys);
            if (authorisation is null)
            {
                _logger.LogWarning("chain {Pool}: checkpoint {Seq} is not signed by a treasury key; not anchored", config.Pool, checkpoint.Sequence);
                continue;
            }

            var tx = await client.AnchorAsync(payload, authorisation.ToParam(), cancellationToken).ConfigureAwait(false);
            if (tx.Succeeded)
            {
                anchored++;
            }
            else if (tx.Error != "AlreadyAnchored")
            {
                _logger.LogWarning("chain {Pool}: anchoring checkpoint {Seq} refused: {Error}", config.Pool, checkpoint.Sequence, tx.Error);
            }
        }

        return anchored;
    }
}
