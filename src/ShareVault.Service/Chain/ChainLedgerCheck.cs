using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;

namespace ShareVault.Service.Chain;

/// <summary>The outcome of cross-checking an export with its treasury: valid or the first disagreement, and what was compared.</summary>
public sealed record ChainCrossCheck(bool IsValid, string Detail, int Anchors, int Settlements, IReadOnlyList<string> Notes, int Premiums = 0);

/// <summary>
/// <c>ledger verify --chain</c>: compares a (separately verified) ledger export with what its pool's
/// treasury holds. Every anchored checkpoint of the pool must be in the export with the same head
/// (a rewritten or truncated history disagrees with an anchor that cannot be removed), every
/// <c>payout_settled</c> entry must match a PaidOut event (claim, recipient, amount, transaction),
/// every PaidOut event must name a claim the export paid, and every premium whose payment reference
/// names a deposit on this chain (<see cref="ChainSettlement.DepositReference"/>) must match that
/// Deposited event (member, token, amount in the export's treasury units).
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
        var premiums = 0;
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

        // 4. Premiums recorded from deposits on this chain: each is its Deposited event, once.
        var caip2 = "eip155:" + treasury.ChainId.ToString(CultureInfo.InvariantCulture);
        var units = entries.Where(e => e["kind"]!.GetValue<string>() == LedgerEntry.Treasury && string.Equals(e["body"]!["treasury"]!.GetValue<string>(), treasury.Address, StringComparison.OrdinalIgnoreCase))
            .Select(e => BigInteger.Parse(e["body"]!["units_per_minor_unit"]!.GetValue<string>(), CultureInfo.InvariantCulture)).LastOrDefault();
        Dictionary<string, ChainDeposit>? deposits = null;
        foreach (var entry in entries.Where(e => e["kind"]!.GetValue<string>() == LedgerEntry.Premium))
        {
            var body = entry["body"]!.AsObject();
            if (body["ref"] is not JsonValue refValue || refValue.GetValue<string>() is not { } reference || !reference.StartsWith(caip2 + ":0x", StringComparison.Ordinal))
            {
                continue;
            }

            deposits ??= (await treasury.DepositsAsync(cancellationToken).ConfigureAwait(false))
                .ToDictionary(d => ChainSettlement.DepositReference(caip2, d.TxHash, d.LogIndex), StringComparer.Ordinal);
            var member = body["member"]!.GetValue<string>();
            var amount = body["amount"]!.GetValue<long>();
            if (!deposits.TryGetValue(reference, out var deposit))
            {
                return Fail($"premium {reference} of {amount} by '{member}' (entry {entry["seq"]}): treasury {treasury.Address} has no such deposit");
            }

            if (!deposit.MemberRef.AsSpan().SequenceEqual(TreasuryMessages.MemberRef(member)))
            {
                return Fail($"premium {reference} is recorded for '{member}', but the deposit names another member");
            }

            if (units.IsZero)
            {
                notes.Add($"premium {reference}: the export binds no treasury units (no treasury entry), amount not compared");
            }
            else if (deposit.Amount != amount * units)
            {
                return Fail($"premium {reference} is recorded as {amount} minor units, but the deposit is {deposit.Amount} token units ({units} per minor unit)");
            }

            premiums++;
        }

        return new ChainCrossCheck(true, $"{anchors} anchored checkpoint(s), {settlements} settlement(s) and {premiums} premium deposit(s) agree with treasury {treasury.Address} on {treasury.ChainId}", anchors, settlements, notes, premiums);

        ChainCrossCheck Fail(string detail) => new(false, detail, anchors, settlements, notes, premiums);
    }
}
