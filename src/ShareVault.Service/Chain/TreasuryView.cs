using ShareVault.Claims;
using ShareVault.Claims.Errors;

namespace ShareVault.Service.Chain;

/// <summary>A pool's treasury as the dashboard shows it: where it is, and what it holds on chain now.</summary>
/// <param name="Balance">The treasury's token balance in token units (a decimal string: it can exceed a long); null when not read.</param>
/// <param name="BalanceMinor">The same in the pool currency's minor units (whole units only); null when not read.</param>
/// <param name="Note">Why the balance was not read (no RPC URL, another chain), or null.</param>
public sealed record TreasuryBalance(long ChainId, string Treasury, string Token, string Currency, string? Balance, long? BalanceMinor, string? Note);

/// <summary>
/// Reads a pool's on-chain treasury balance for the dashboard and the HTTP API. The treasury is the
/// one the pool's ledger binds (the admin-signed <c>treasury</c> entry), never one a caller names; the
/// balance is read only from an RPC endpoint that reports that entry's chain id, so a service pointed at
/// another chain shows no figure rather than a wrong one.
/// </summary>
public sealed class TreasuryView(ClaimsEngine engine, string? rpcUrl)
{
    // One read-only client per treasury for the service's life: a Nethereum client per request
    // would open a new HTTP connection pool each time the dashboard is viewed.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(long, string), TreasuryClient> _clients = new();
    private long? _rpcChainId;

    public async Task<TreasuryBalance> ReadAsync(string poolId, CancellationToken cancellationToken)
    {
        var pool = engine.GetPool(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
        var bound = engine.Treasury(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"Pool '{poolId}' is bound to no treasury ('sharevault chain deploy' or 'chain bind')");
        if (rpcUrl is null)
        {
            return new TreasuryBalance(bound.ChainId, bound.Address, bound.Token, pool.Currency, null, null, "the service runs without --chain: no RPC endpoint to read the balance from");
        }

        _rpcChainId ??= await TreasuryClient.ChainIdAsync(rpcUrl, cancellationToken).ConfigureAwait(false);
        if (_rpcChainId != bound.ChainId)
        {
            return new TreasuryBalance(bound.ChainId, bound.Address, bound.Token, pool.Currency, null, null, $"the service's RPC endpoint is chain {_rpcChainId}, the treasury is on chain {bound.ChainId}");
        }

        var client = _clients.GetOrAdd((bound.ChainId, bound.Address), key => new TreasuryClient(rpcUrl, null, key.Item1, key.Item2));
        var units = await client.BalanceAsync(bound.Token, bound.Address, cancellationToken).ConfigureAwait(false);
        var minor = units / bound.UnitsPerMinorUnit;
        return new TreasuryBalance(bound.ChainId, bound.Address, bound.Token, pool.Currency, units.ToString(System.Globalization.CultureInfo.InvariantCulture),
            minor <= long.MaxValue ? (long)minor : null, null);
    }
}
