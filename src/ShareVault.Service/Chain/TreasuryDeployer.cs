using System.Numerics;

namespace ShareVault.Service.Chain;

/// <summary>
/// Deploys a pool's PoolTreasury (and, on a dev chain, the test stablecoin it holds) and returns
/// the <see cref="ChainConfig"/> to save. The cap is the pool's largest payout in token units.
/// </summary>
public static class TreasuryDeployer
{
    /// <summary>Minor-unit digits of the pool currencies ShareVault uses (ISO 4217: EUR, USD, GBP… have 2).</summary>
    public const int CurrencyDigits = 2;

    public static async Task<ChainConfig> DeployAsync(string rpcUrl, string senderKey, string pool, long maxPayoutMinorUnits, IReadOnlyList<ChainPoolKey> keys, string? token, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var chainId = await TreasuryClient.ChainIdAsync(rpcUrl, cancellationToken).ConfigureAwait(false);
        var client = new TreasuryClient(rpcUrl, senderKey, chainId, "");
        token ??= await client.DeployStablecoinAsync(cancellationToken).ConfigureAwait(false);
        var decimals = await client.DecimalsAsync(token, cancellationToken).ConfigureAwait(false);
        if (decimals < CurrencyDigits)
        {
            throw new InvalidOperationException($"Token {token} has {decimals} decimals; a pool currency needs at least {CurrencyDigits}");
        }

        var unitsPerMinor = BigInteger.Pow(10, decimals - CurrencyDigits);
        var deployed = await client.DeployAsync(maxPayoutMinorUnits * unitsPerMinor, keys, cancellationToken).ConfigureAwait(false);
        if (!deployed.Succeeded)
        {
            throw new InvalidOperationException($"PoolTreasury deployment failed: {deployed}");
        }

        return new ChainConfig(pool, chainId, client.Address, token, unitsPerMinor, rpcUrl);
    }
}
