using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;

namespace ShareVault.Service.Chain;

/// <summary>The outcome of cross-checking an export with its treasury: valid or the first disagreement, and what was compared.</summary>
public sealed record ChainCrossCheck(bool IsValid, string Detail, int Anchors, int Settlements, IReadOnlyList<string> Notes);

/// <summary>
/// <c>ledger verify --chain</c>: compares a (separately verified) ledger export with what its pool's
/// treasury holds. Every anchored checkpoint of the pool must be in the export with the same head
/// (a rewritten or truncated history disagrees with an anchor that cannot be removed), every
/// <c>payout_settled</c> entry must match a PaidOut event (claim, recipient, amount, transaction),
/// and every PaidOut event must name a claim the export paid.
/// </summary>
public static class ChainLedgerCheck
{
    public static async Task<ChainCrossCheck> VerifyAsync(JsonObject export, TreasuryClient treasury, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(export);
        ArgumentNullException.ThrowIfNull(treasury);
        var notes = new List<string>();
        var pool = export["pool"]?["id"]?.GetValue<string>() ?? throw new FormatException("The export names no pool");
        var entries = export["entries"]!.AsArray().Select(e => e!.AsObject()).ToList();
        var checkpoints = export["checkpoints"]!.AsArray().Select(c => c!.AsObject())
            .ToDictionary(c => c["seq"]!.GetValue<long>(), c => (Hash: c["hash"]!.GetValue<string>(), Time: c["time"]!.GetValue<string>()));

        // 1. Anchored checkpoints.
        var anchors = 0;
        var settlements = 0;
        foreach (var anchor in await treasury.AnchorsAsync(cancellationToken).ConfigureAwait(false))
        {
            JsonObject payload;
            try
            {
                payload = JsonNode.Parse(anchor.Payload)!.AsObject();
            }
            catch (System.Text.Json.JsonException)
            {
                return Fail($"anchor {anchor.Index} (tx {anchor.TxHash}) is not a checkpoint payload");
            }

            var (anchoredPool, seq, hash, time) = (payload["pool"]!.GetValue<string>(), payload["seq"]!.GetValue<long>(), payload["hash"]!.GetValue<string>(), payload["time"]!.GetValue<string>());
            if (anchoredPool != pool)
            {
                notes.Add($"anchor {anchor.Index} is of pool '{anchoredPool}', not '{pool}'");
                continue;
            }

            anchors++;
            if (seq > entries.Count)
            {
                return Fail($"checkpoint {seq} anchored in block {anchor.Block} lies beyond the export's {entries.Count} entries: the export hides history the chain vouches for");
            }

            var entryHash = entries[(int)seq - 1]["hash"]!.GetValue<string>();
            if (entryHash != hash)
            {
                return Fail($"checkpoint {seq} anchored in block {anchor.Block} (tx {anchor.TxHash}) names head {hash[..16]}…, but the export's entry {seq} has hash {entryHash[..16]}…: the ledger was rewritten");
            }

            if (checkpoints.TryGetValue(seq, out var exported) && (exported.Hash != hash || exported.Time != time))
            {
                return Fail($"checkpoint {seq} differs from the one anchored in block {anchor.Block}");
            }
        }

        // 2. Settlements against PaidOut events.
        var paidOnChain = (await treasury.PayoutsAsync(cancellationToken).ConfigureAwait(false))
            .GroupBy(p => Convert.ToHexStringLower(p.ClaimHash)).ToDictionary(g => g.Key, g => g.ToList());
        var paidInLedger = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var kind = entry["kind"]!.GetValue<string>();
            var body = entry["body"]!.AsObject();
            if (kind == LedgerEntry.Payout)
            {
                paidInLedger.Add(Convert.ToHexStringLower(TreasuryMessages.ClaimHash(body["claim"]!.GetValue<string>())));
            }

            if (kind != LedgerEntry.PayoutSettled)
            {
                continue;
            }

            settlements++;
            var claim = body["claim"]!.GetValue<string>();
            if (!string.Equals(body["treasury"]!.GetValue<string>(), treasury.Address, StringComparison.OrdinalIgnoreCase))
            {
                notes.Add($"{claim} was settled by treasury {body["treasury"]}, not this one");
                continue;
            }

            if (!paidOnChain.TryGetValue(Convert.ToHexStringLower(TreasuryMessages.ClaimHash(claim)), out var events))
            {
                return Fail($"{claim}: the ledger records it settled in tx {body["tx"]}, but the treasury has no payout for it");
            }

            var paid = events[0];
            if (!string.Equals(paid.TxHash, body["tx"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase)
                || !string.Equals(paid.To, body["to"]!.GetValue<string>(), StringComparison.OrdinalIgnoreCase)
                || paid.Amount.ToString(CultureInfo.InvariantCulture) != body["amount"]!.GetValue<string>())
            {
                return Fail($"{claim}: the ledger's settlement (tx {body["tx"]}, {body["amount"]} to {body["to"]}) differs from the treasury's payout (tx {paid.TxHash}, {paid.Amount} to {paid.To})");
            }
        }

        // 3. Every payout the treasury made is one the ledger signed.
        foreach (var claimHash in paidOnChain.Keys.Where(h => !paidInLedger.Contains(h)))
        {
            return Fail($"the treasury paid claim hash {claimHash[..16]}… (tx {paidOnChain[claimHash][0].TxHash}), which no payout entry of the export names");
        }

        return new ChainCrossCheck(true, $"{anchors} anchored checkpoint(s) and {settlements} settlement(s) agree with treasury {treasury.Address} on {treasury.ChainId}", anchors, settlements, notes);

        ChainCrossCheck Fail(string detail) => new(false, detail, anchors, settlements, notes);
    }
}
