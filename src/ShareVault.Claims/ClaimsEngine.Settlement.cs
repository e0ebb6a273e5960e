using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;

namespace ShareVault.Claims;

/// <summary>A signed payout whose on-chain settlement is not recorded yet, with the member's payout address (null: none registered).</summary>
public sealed record PayoutToSettle(string PoolId, string ClaimId, string MemberId, long Amount, string Currency, string? Address);

// On-chain settlement of signed payouts (the service's Chain folder drives it; Claims knows no chain
// client): payout addresses, the settlement message's signature, and payout_settled entries.
public sealed partial class ClaimsEngine
{
    /// <summary>
    /// Records where a member's on-chain payouts go. In an administered pool <paramref name="admin"/>
    /// must be an administrator's signature over the entry's body (<see cref="AdminSignature"/>), so a
    /// coordinator alone cannot redirect payouts.
    /// </summary>
    public Task RegisterPayoutAddressAsync(string poolId, string memberId, string address, JsonObject? admin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        ArgumentNullException.ThrowIfNull(memberId);
        if (address is null || !PoolRegistry.IsChainAddress(address))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"'{address}' is not a 0x-prefixed 20-byte hex address");
        }

        return _gate.RunAsync(tx =>
        {
            Pools.PoolTables.RequireMember(tx, poolId, memberId);
            var body = PayoutAddressBody(memberId, address);
            RegistryAdmin.Attach(poolId, LedgerEntry.PayoutAddress, body, RegistryAdmin.Keys(tx, poolId), admin);
            _ledger.Append(tx, poolId, LedgerEntry.PayoutAddress, body);
        }, cancellationToken);
    }

    /// <summary>
    /// Binds the pool to its on-chain treasury (a <c>treasury</c> entry, body <see cref="PoolRegistry.TreasuryBody"/>):
    /// custody nodes then sign treasury payout messages for this chain, contract and token only, and
    /// <c>ledger verify</c> checks each <c>payout_settled</c> entry against it. In an administered pool
    /// <paramref name="admin"/> must be an administrator's signature over the body. Recording the
    /// binding the ledger already holds changes nothing (false).
    /// </summary>
    public async Task<bool> BindTreasuryAsync(string poolId, JsonObject body, JsonObject? admin, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        ArgumentNullException.ThrowIfNull(body);
        var recorded = false;
        await _gate.RunAsync(tx =>
        {
            var (registry, refused, at) = PoolRegistry.Fold(poolId, _ledger.Entries(poolId));
            if (refused is not null)
            {
                throw new ClaimsException(ClaimsError.Conflict, $"Pool '{poolId}': ledger entry {at} is inconsistent ({refused.Detail})");
            }

            if (registry.Pool is null)
            {
                throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
            }

            var entryBody = body.DeepClone().AsObject();
            entryBody.Remove(AdminSignature.Field);
            if (registry.Treasury is { } bound && CanonicalJson.Serialize(PoolRegistry.TreasuryBody(bound.ChainId, bound.Address, bound.Token, bound.UnitsPerMinorUnit)).AsSpan()
                    .SequenceEqual(CanonicalJson.Serialize(entryBody)))
            {
                return;
            }

            RegistryAdmin.Attach(poolId, LedgerEntry.Treasury, entryBody, RegistryAdmin.Keys(tx, poolId), admin);
            var probe = registry.Clone().Apply(LedgerEntry.Create(poolId, registry.Sequence + 1, _time.GetUtcNow(), LedgerEntry.Treasury, entryBody, registry.Head));
            if (!probe.Applied)
            {
                throw new ClaimsException(ClaimsError.InvalidInput, probe.Detail);
            }

            _ledger.Append(tx, poolId, LedgerEntry.Treasury, entryBody);
            recorded = true;
        }, cancellationToken).ConfigureAwait(false);
        return recorded;
    }

    /// <summary>The treasury the pool's ledger binds it to, or null.</summary>
    public RegistryTreasury? Treasury(string poolId) => PoolRegistry.Fold(poolId, _ledger.Entries(poolId)).Registry.Treasury;

    /// <summary>The body an administrator signs for a payout address.</summary>
    public static JsonObject PayoutAddressBody(string memberId, string address) => new() { ["member"] = memberId, ["address"] = address };

    /// <summary>Signed payouts of the pool with no <c>payout_settled</c> entry yet, oldest first.</summary>
    public IReadOnlyList<PayoutToSettle> PayoutsToSettle(string poolId)
    {
        var pool = GetPool(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
        var (registry, refused, at) = PoolRegistry.Fold(poolId, _ledger.Entries(poolId));
        if (refused is not null)
        {
            throw new ClaimsException(ClaimsError.Conflict, $"Pool '{poolId}': ledger entry {at} is inconsistent ({refused.Detail})");
        }

        return [.. registry.Claims.Values
            .Where(c => c.Status == RegistryClaim.Paid && !registry.Settled.ContainsKey(c.Id))
            .OrderBy(c => c.OpenedAt)
            .Select(c => new PayoutToSettle(poolId, c.Id, c.MemberId, c.Amount, pool.Currency, registry.PayoutAddresses.GetValueOrDefault(c.MemberId)))];
    }

    /// <summary>
    /// The pool key's JWS over a treasury payout message for <paramref name="claimId"/>, which must
    /// be paid in the ledger and not yet settled. The justification names the claim and carries the
    /// pool's JWKS, so a custody node can check the message against its replica (the claim's signed
    /// payout, the member's payout address, the pool's treasury) before signing.
    /// </summary>
    public async Task<(string Jws, string Kid)> SignSettlementAsync(string poolId, string claimId, byte[] message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        var pool = GetPool(poolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
        if (PayoutsToSettle(poolId).All(p => p.ClaimId != claimId))
        {
            throw new ClaimsException(ClaimsError.Conflict, $"Claim '{claimId}' has no signed, unsettled payout in pool '{poolId}'");
        }

        // The pool's JWKS (its SHA-256 is in the admin-signed pool_created entry) lets a node verify the
        // claim's payout JWS itself before it signs the treasury message.
        var justification = new JsonObject { ["pool"] = poolId, ["purpose"] = PoolSigningRequest.SettlementPurpose, ["claim"] = claimId, ["jwks"] = _signer.Jwks(pool.KeyName) };
        var request = new PoolSigningRequest(pool.KeyName, poolId, PoolSigningRequest.SettlementPurpose, message, justification, after => _ledger.EntriesAfter(poolId, after));
        await _signing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await _signer.SignAsync(request, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _signing.Release();
        }
    }

    /// <summary>
    /// Appends a <c>payout_settled</c> entry (<see cref="LedgerEntry.PayoutSettled"/>) unless the claim
    /// already has one: false then, so recording the same settlement twice (a retry, a restart that
    /// reconciles from chain events) changes nothing.
    /// </summary>
    public async Task<bool> RecordSettlementAsync(string poolId, JsonObject settlement, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settlement);
        var claimId = settlement["claim"]?.GetValue<string>() ?? throw new ArgumentException("A settlement names its claim", nameof(settlement));
        var recorded = false;
        await _gate.RunAsync(tx =>
        {
            var (registry, refused, at) = PoolRegistry.Fold(poolId, _ledger.Entries(poolId));
            if (refused is not null)
            {
                throw new ClaimsException(ClaimsError.Conflict, $"Pool '{poolId}': ledger entry {at} is inconsistent ({refused.Detail})");
            }

            if (registry.Settled.ContainsKey(claimId))
            {
                return;
            }

            // The same checks the registry fold (ledger verify, custody nodes) applies to the entry.
            var probe = registry.Clone().Apply(LedgerEntry.Create(poolId, registry.Sequence + 1, _time.GetUtcNow(), LedgerEntry.PayoutSettled, settlement, registry.Head));
            if (!probe.Applied)
            {
                throw new ClaimsException(ClaimsError.Conflict, probe.Detail);
            }

            _ledger.Append(tx, poolId, LedgerEntry.PayoutSettled, settlement.DeepClone().AsObject());
            recorded = true;
        }, cancellationToken).ConfigureAwait(false);
        return recorded;
    }
}
