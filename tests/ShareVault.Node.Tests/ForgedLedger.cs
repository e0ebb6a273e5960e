using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Rules;

namespace ShareVault.Node.Tests;

/// <summary>
/// What a coordinator that controls the claims database can write: a well-chained ledger (every
/// hash recomputed) with entries of its choosing, and a claim the trigger rule never opened. Shared
/// by the in-process guard tests and the real-node malicious-coordinator tests.
/// </summary>
internal static class ForgedLedger
{
    /// <summary><paramref name="entries"/> followed by <paramref name="extra"/> (stamped <paramref name="time"/>), re-chained from genesis.</summary>
    public static List<LedgerEntry> Chain(string pool, DateTimeOffset time, IEnumerable<LedgerEntry> entries, IEnumerable<(string Kind, JsonObject Body)> extra)
    {
        var chained = new List<LedgerEntry>();
        var previous = LedgerEntry.Genesis;
        foreach (var (kind, body, stamp) in entries.Select(e => (e.Kind, e.Body, e.Time)).Concat(extra.Select(x => (x.Kind, x.Body, LedgerEntry.FormatTime(time)))))
        {
            var seq = chained.Count + 1;
            var hash = LedgerEntry.ComputeHash(pool, seq, stamp, kind, body, previous);
            chained.Add(new LedgerEntry(pool, seq, stamp, kind, body, previous, hash));
            previous = hash;
        }

        return chained;
    }

    /// <summary>An approved claim of <paramref name="policy"/> (rule <paramref name="rule"/>) citing <paramref name="records"/>, for <paramref name="amount"/>.</summary>
    public static ClaimInfo Claim(string pool, string member, string policy, string rule, IReadOnlyList<VerifiedRecord> records, long amount) =>
        new(ClaimsEngine.ClaimId(policy, records[0].DeviceId, records[0].Sequence), pool, member, policy, records[0].DeviceId, records[0].Sequence, "approved", amount,
            TriggerRule.Parse(rule).HashHex,
            new JsonArray([.. records.Select(r => (JsonNode)new JsonObject { ["seq"] = r.Sequence, ["sha256"] = Convert.ToHexStringLower(r.Hash) })]), string.Empty, null, null);

    /// <summary>The claim_opened and decision entries the engine would write had the rule fired for <paramref name="claim"/>.</summary>
    public static List<(string Kind, JsonObject Body)> ClaimEntries(ClaimInfo claim, string rule, IReadOnlyList<VerifiedRecord> records) =>
    [
        (LedgerEntry.ClaimOpened, new JsonObject
        {
            ["claim"] = claim.Id, ["policy"] = claim.PolicyId, ["member"] = claim.MemberId, ["device"] = claim.DeviceId, ["rule"] = rule, ["rule_hash"] = claim.RuleHash,
            ["amount"] = claim.Amount, ["from"] = LedgerEntry.FormatTime(records[0].Time), ["until"] = LedgerEntry.FormatTime(records[^1].Time), ["evidence"] = claim.Evidence.DeepClone(),
        }),
        (LedgerEntry.Decision, new JsonObject { ["claim"] = claim.Id, ["decision"] = "approved", ["by"] = "rule", ["reason"] = "the policy approves its trigger automatically" }),
    ];

    /// <summary>The entries after <paramref name="after"/> as a node receives them.</summary>
    public static JsonArray Segment(IEnumerable<LedgerEntry> entries, long after) => new([.. entries.Where(e => e.Sequence > after).Select(e => (JsonNode)e.ToJson())]);
}
