using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Payouts;

/// <summary>
/// Signs and records a payout for every approved claim that has none and that the pool's balance
/// covers. The instruction is deterministic (no time in it) and keyed by claim, so a crash
/// between signing and storing re-signs the same instruction. Each request carries the
/// justification a custody node re-checks (<see cref="Justify"/>) and the ledger after any head.
/// </summary>
internal sealed class PayoutIssuer(WriteGate gate, IPoolSigner signer, LedgerBook ledger, ClaimEvidence evidence, DeviceDirectory devices, TimeProvider time)
{
    /// <summary>
    /// The payout's justification: the claim's records with the predecessor of the first and every
    /// record in between (what <c>ledger verify</c> recomputes the trigger from), and the device's
    /// SubjectPublicKeyInfo PEM, which a node checks against the enrolment's key_sha256.
    /// </summary>
    public JsonObject Justify(ClaimInfo claim)
    {
        var records = evidence.Records(claim.DeviceId, claim.Evidence[0]!["seq"]!.GetValue<long>(), claim.Evidence[^1]!["seq"]!.GetValue<long>())
            .Select(r => (JsonNode)new JsonObject { ["device"] = claim.DeviceId, ["seq"] = r.Sequence, ["cose"] = ShareVault.Hardware.Base64Url.Encode(r.Cose) });
        var device = devices.Find(claim.DeviceId) ?? throw new ClaimsException(ClaimsError.NotFound, $"Device '{claim.DeviceId}' is not enrolled");
        return new JsonObject
        {
            ["pool"] = claim.PoolId,
            ["purpose"] = PoolSigningRequest.PayoutPurpose,
            ["evidence"] = new JsonArray([.. records]),
            ["device_keys"] = new JsonObject { [claim.DeviceId] = LedgerExport.PublicKeyPem(device.PublicKey) },
        };
    }

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
            var payload = PayoutInstruction.Payload(claim, owner.Currency);
            var request = new PoolSigningRequest(owner.KeyName, claim.PoolId, PoolSigningRequest.PayoutPurpose, payload, Justify(claim), after => ledger.EntriesAfter(claim.PoolId, after));
            var (jws, kid) = await signer.SignAsync(request, cancellationToken).ConfigureAwait(false);
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
