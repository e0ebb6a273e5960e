using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Payouts;

/// <summary>
/// Signs and records a payout for every approved claim that has none and that the pool's balance
/// covers. The instruction is deterministic (no time in it) and keyed by claim, so a crash
/// between signing and storing re-signs the same instruction.
/// </summary>
internal sealed class PayoutIssuer(WriteGate gate, IPoolSigner signer, LedgerBook ledger, TimeProvider time)
{
    /// <summary>Pays what it can of <paramref name="approved"/>; the caller holds the signing lock.</summary>
    public async Task<int> PayAsync(IReadOnlyList<ClaimInfo> approved, Func<string, PoolInfo?> pool, CancellationToken cancellationToken)
    {
        var paid = 0;
        foreach (var claim in approved)
        {
            using (var reader = gate.Database.OpenReader())
            {
                if (PayoutTable.Exists(reader, claim.Id))
                {
                    continue;
                }

                if (PayoutTable.Balance(reader, null, claim.PoolId) < claim.Amount)
                {
                    continue; // stays approved until premiums cover it
                }
            }

            var owner = pool(claim.PoolId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{claim.PoolId}'");
            var payload = CanonicalJson.Serialize(PayoutInstruction.Build(claim, owner.Currency));
            var (jws, kid) = await signer.SignAsync(owner.KeyName, payload, cancellationToken).ConfigureAwait(false);
            await gate.RunAsync(tx =>
            {
                // Again under the writer lock: another instance (or the CLI) may have paid from the
                // pool while this one was signing; the balance read above is only a hint.
                if (PayoutTable.Balance(tx.Connection!, tx, claim.PoolId) < claim.Amount
                    || !PayoutTable.Insert(tx, new PayoutInfo(claim.Id, claim.PoolId, Encoding.UTF8.GetString(payload), jws, kid, LedgerEntry.FormatTime(time.GetUtcNow()))))
                {
                    return;
                }

                ClaimBook.MarkPaid(tx, claim.Id);
                ledger.Append(tx, claim.PoolId, LedgerEntry.Payout, new JsonObject
                {
                    ["claim"] = claim.Id,
                    ["member"] = claim.MemberId,
                    ["amount"] = claim.Amount,
                    ["currency"] = owner.Currency,
                    ["kid"] = kid,
                    ["jws"] = jws,
                });
                paid++;
            }, cancellationToken).ConfigureAwait(false);
        }

        return paid;
    }
}
