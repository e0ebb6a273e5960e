using System.Security.Cryptography;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;

namespace ShareVault.Claims.Replay;

/// <summary>Why a claim's trigger could not be recomputed from its evidence, or did not fire.</summary>
public enum PayoutReplayProblem
{
    /// <summary>The policy's rule text does not parse.</summary>
    RuleDoesNotParse,

    /// <summary>A record the claim lists is not among the records given.</summary>
    MissingEvidence,

    /// <summary>A record does not verify under the device key, or carries another sequence number.</summary>
    BadSignature,

    /// <summary>A record's hash is not the one the claim lists for its sequence number.</summary>
    HashDiffers,

    /// <summary>A record the claim lists breaks the device's hash chain.</summary>
    ChainBreakInClaim,

    /// <summary>Replayed, the rule does not fire with exactly the claim's records.</summary>
    NotFired,

    /// <summary>A record is timed further back than the allowed step before the record before it (<see cref="EvidenceTimeLimits.MaxStepBack"/>).</summary>
    RecordTimeBeforePrevious,

    /// <summary>A record the claim lists lies outside the window around its arrival (<see cref="EvidenceTimeLimits.MaxAge"/>, <see cref="EvidenceTimeLimits.MaxLead"/>).</summary>
    RecordTimeOutsideArrival,
}

/// <summary>What <see cref="PayoutReplay.Check"/> found: the trigger fired with exactly the claim's records, or the first problem.</summary>
public sealed record PayoutReplayResult(bool Fired, PayoutReplayProblem? Problem, string Detail)
{
    public static PayoutReplayResult Fires { get; } = new(true, null, "the trigger fires with exactly the claim's records");
}

/// <summary>
/// The payout check that <c>ledger verify</c> (<see cref="Ledger.LedgerVerifier"/>) and a custody
/// node's guard share: every record from the claim's first to its last is verified as COSE_Sign1
/// under the device key (RFC 9052 §4.4, ES256), its hash compared with the claim's list, and the
/// records are replayed in sequence through <see cref="DecisionReplay"/> (chain links, gaps, breaks,
/// feeding) into the policy's trigger — the code the service ran — which must fire with exactly the
/// claim's records. The predecessor of the first record, when given, lets its chain link and time step be
/// checked; when the claim names it, it must be given.
/// </summary>
public static class PayoutReplay
{
    /// <param name="deviceId">The claim's device.</param>
    /// <param name="deviceKey">Its enrolled P-256 key.</param>
    /// <param name="ruleText">The policy's rule text.</param>
    /// <param name="context">The policy's places and windows.</param>
    /// <param name="claimEvidence">The claim's records: sequence number and SHA-256 (hex) of the COSE bytes, in order; not empty.</param>
    /// <param name="evidence">The COSE_Sign1 bytes of a sequence number of the device, or null when not given (a gap when the claim does not list it).</param>
    /// <param name="source">Where the records come from, for the detail ("the export", "the justification").</param>
    /// <param name="timeLimits">The record-time bounds ingest applied (default <see cref="EvidenceTimeLimits.Default"/>): no record
    /// timed further back than the allowed step before the one before it.</param>
    /// <param name="arrivals">When known (a claim's <c>received_at</c>), the arrival of each listed record, whose time must lie in the window around it.</param>
    /// <param name="precededBy">The record before the first that the claim names (<see cref="Ledger.ClaimPredecessor"/>): when given, it must be
    /// among the records, with that hash, so its absence cannot pass for a gap.</param>
    /// <param name="decidedAt">When the claim was opened (the claim_opened entry's time): a rule decided on the clock (an
    /// absence) is recomputed at that time. Without it such a rule does not fire.</param>
    /// <param name="arrivedBy">Records of <paramref name="arrivals"/> whose arrival is only known to be no later than the time given
    /// (the claim's): only the upper bound of the window is checked for them.</param>
    public static PayoutReplayResult Check(string deviceId, ECDsa deviceKey, string ruleText, RuleContext context, IReadOnlyList<(long Seq, string Sha256)> claimEvidence,
        Func<long, byte[]?> evidence, string source, EvidenceTimeLimits? timeLimits = null, IReadOnlyDictionary<long, DateTimeOffset>? arrivals = null,
        IReadOnlySet<long>? arrivedBy = null, (long Seq, string Sha256)? precededBy = null, DateTimeOffset? decidedAt = null)
    {
        timeLimits ??= EvidenceTimeLimits.Default;
        ArgumentNullException.ThrowIfNull(deviceId);
        ArgumentNullException.ThrowIfNull(deviceKey);
        ArgumentNullException.ThrowIfNull(ruleText);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(claimEvidence);
        ArgumentNullException.ThrowIfNull(evidence);
        ArgumentOutOfRangeException.ThrowIfZero(claimEvidence.Count);
        if (!TriggerRule.TryParse(ruleText, out var rule, out var reason))
        {
            return new(false, PayoutReplayProblem.RuleDoesNotParse, "the policy rule does not parse: " + reason);
        }

        var listed = new Dictionary<long, string>();
        foreach (var (seq, hash) in claimEvidence)
        {
            listed[seq] = hash;
        }

        var first = claimEvidence[0].Seq;
        var last = claimEvidence[^1].Seq;
        var predecessor = evidence(first - 1);
        var before = predecessor is null ? null : EvidenceRecord.Hash(predecessor);
        if (precededBy is { } named)
        {
            if (before is null)
            {
                return new(false, PayoutReplayProblem.MissingEvidence, $"evidence {deviceId}#{named.Seq}, which the claim names as its first record's predecessor, is missing from {source}");
            }

            if (Convert.ToHexStringLower(before) != named.Sha256)
            {
                return new(false, PayoutReplayProblem.HashDiffers, $"evidence {deviceId}#{named.Seq} hash differs from the predecessor the claim names");
            }
        }

        (long Seq, DateTimeOffset Time)? previousTime = predecessor is not null && EvidenceVerifier.Verify(predecessor, id => id == deviceId ? deviceKey : null) is { IsValid: true } p
            ? (p.Record!.Sequence, p.Record.Time)
            : null;
        var evaluator = new TriggerEvaluator(rule!, context);
        var replay = new DecisionReplay(before, [TriggerFeed.All(evaluator)]);
        TriggerFiring? firing = null;
        for (var seq = first; seq <= last; seq++)
        {
            if (evidence(seq) is not { } cose)
            {
                if (listed.ContainsKey(seq))
                {
                    return new(false, PayoutReplayProblem.MissingEvidence, $"evidence {deviceId}#{seq} is missing from {source}");
                }

                replay.Gap(); // a gap the service recorded and moved past
                continue;
            }

            var verification = EvidenceVerifier.Verify(cose, id => id == deviceId ? deviceKey : null);
            if (!verification.IsValid || verification.Record!.Sequence != seq)
            {
                return new(false, PayoutReplayProblem.BadSignature, $"evidence {deviceId}#{seq} does not verify ({verification.Reason}: {verification.Detail})");
            }

            if (listed.TryGetValue(seq, out var hash) && Convert.ToHexStringLower(verification.Hash) != hash)
            {
                return new(false, PayoutReplayProblem.HashDiffers, $"evidence {deviceId}#{seq} hash differs from the claim");
            }

            // The time rules ingest applied (EvidenceTimeLimits): evidence that breaks them does not verify.
            var time = verification.Record.Time;
            if (previousTime is { } prior && !timeLimits.Follows(time, prior.Time))
            {
                return new(false, PayoutReplayProblem.RecordTimeBeforePrevious,
                    $"evidence {deviceId}#{seq} is timed {Seconds(prior.Time - time)} s before #{prior.Seq}, more than the {Seconds(timeLimits.MaxStepBack)} s a clock may step back");
            }

            previousTime = (seq, time);
            if (arrivals is not null && arrivals.TryGetValue(seq, out var arrived)
                && (arrivedBy?.Contains(seq) == true ? time > arrived + timeLimits.MaxLead : !timeLimits.FitsArrival(time, arrived)))
            {
                return new(false, PayoutReplayProblem.RecordTimeOutsideArrival, $"evidence {deviceId}#{seq}: {timeLimits.DescribeArrival(time, arrived)}");
            }

            var facts = new EvidenceFacts(deviceId, seq, time, verification.Hash, verification.Record.Readings);
            if (replay.Next(facts, verification.Record.PreviousHash.ToArray(), (_, fired) => firing ??= fired) == ReplayStep.ChainBreak && listed.ContainsKey(seq))
            {
                return new(false, PayoutReplayProblem.ChainBreakInClaim, $"evidence {deviceId}#{seq} breaks the device's hash chain but is listed in the claim");
            }
        }

        if (evaluator.NeedsClock)
        {
            if (decidedAt is not { } decided)
            {
                return new(false, PayoutReplayProblem.NotFired, $"'{rule!.Text}' is decided on the clock, and {source} gives no decision time");
            }

            // The claim lists the last record before the silence; the silence is measured to the decision.
            DateTimeOffset? lastArrival = arrivals is not null && arrivals.TryGetValue(last, out var arrival) ? arrival : null;
            replay.Tick(decided, lastArrival, (_, fired) => firing ??= fired);
        }

        if (firing is null || !firing.Records.Select(r => r.Sequence).SequenceEqual(claimEvidence.Select(x => x.Seq)))
        {
            return new(false, PayoutReplayProblem.NotFired, $"re-evaluating '{rule!.Text}' over the claim's evidence does not fire");
        }

        return PayoutReplayResult.Fires;
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture);
}
