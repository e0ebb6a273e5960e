using System.Text.Json.Nodes;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Pools;
using ShareVault.Hardware;

namespace ShareVault.Claims.Export;

/// <summary>
/// Builds a <see cref="LedgerExport.Format"/> document from the stores: the pool, its JWKS,
/// policies, devices, the evidence every claim relies on, the entries and the checkpoints.
/// </summary>
internal sealed class LedgerExportBuilder(PolicyTable policies, DeviceDirectory devices, ClaimEvidence claimEvidence, ClaimBook claims, LedgerBook ledger, IPoolSigner signer)
{
    public JsonObject Build(PoolInfo pool)
    {
        var records = new JsonArray();
        var included = new HashSet<(string, long)>();
        foreach (var claim in claims.List(pool.Id, null))
        {
            foreach (var record in claimEvidence.Records(claim.DeviceId, claim.Evidence[0]!["seq"]!.GetValue<long>(), claim.Evidence[^1]!["seq"]!.GetValue<long>()))
            {
                if (included.Add((claim.DeviceId, record.Sequence)))
                {
                    records.Add(new JsonObject { ["device"] = claim.DeviceId, ["seq"] = record.Sequence, ["cose"] = Base64Url.Encode(record.Cose) });
                }
            }
        }

        return new JsonObject
        {
            ["format"] = LedgerExport.Format,
            ["pool"] = new JsonObject { ["id"] = pool.Id, ["name"] = pool.Name, ["currency"] = pool.Currency, ["key"] = pool.KeyName, ["max_payout"] = pool.MaxPayout },
            ["jwks"] = signer.Jwks(pool.KeyName),
            ["policies"] = new JsonArray([.. policies.List(pool.Id).Select(p => (JsonNode)new JsonObject
            {
                ["id"] = p.Id, ["member"] = p.MemberId, ["rule"] = p.Rule, ["rule_hash"] = p.RuleHash,
                ["payout_amount"] = p.PayoutAmount, ["votes_required"] = p.VotesRequired, ["context"] = p.Context.DeepClone(),
            })]),
            ["devices"] = new JsonArray([.. devices.List(pool.Id).Select(d => (JsonNode)new JsonObject
            {
                ["id"] = d.Id, ["member"] = d.MemberId, ["public_key"] = LedgerExport.PublicKeyPem(d.PublicKey),
            })]),
            ["evidence"] = records,
            ["entries"] = new JsonArray([.. ledger.Entries(pool.Id).Select(e => (JsonNode)e.ToJson())]),
            ["checkpoints"] = new JsonArray([.. ledger.Checkpoints(pool.Id).Select(c => (JsonNode)new JsonObject
            {
                ["seq"] = c.Sequence, ["hash"] = c.Hash, ["time"] = c.Time, ["jws"] = c.Jws,
            })]),
        };
    }
}
