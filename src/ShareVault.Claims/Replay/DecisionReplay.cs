using System.Security.Cryptography;
using ShareVault.Claims.Rules;

namespace ShareVault.Claims.Replay;

/// <summary>What the replay made of one record.</summary>
internal enum ReplayStep
{
    /// <summary>The record links to its predecessor (or the link cannot be checked) and was fed to the triggers.</summary>
    Fed,

    /// <summary>
    /// The record names a previous hash that is not its predecessor's hash: a chain break. It is not
    /// fed, so a forked chain cannot make a decision, but it becomes the predecessor of the next record.
    /// </summary>
    ChainBreak,
}

/// <summary>One trigger evaluator fed by a replay; a policy issued after enrolment sees only records after <paramref name="FromSequence"/>.</summary>
internal sealed record TriggerFeed(TriggerEvaluator Evaluator, long FromSequence)
{
    /// <summary>For a verifier, which has no enrolment history: every record is fed.</summary>
    public static TriggerFeed All(TriggerEvaluator evaluator) => new(evaluator, long.MinValue);
}

/// <summary>
/// The one definition of how a device's records, taken in sequence order, make decisions; the engine
/// (<c>Evaluation</c>) and the offline <see cref="Ledger.LedgerVerifier"/> both run it, so a verifier
/// recomputes a decision with the code that made it.
/// <list type="bullet">
/// <item>Link: each record carries the SHA-256 of its predecessor's COSE_Sign1 bytes
/// (docs/evidence-format.md; RFC 9052 itself defines no chain). Checked only where both hashes are
/// known: an empty previous hash is a chain start, which after a predecessor is a break.</item>
/// <item>Gap: a missing sequence number. The record after it has no known predecessor, so its link
/// is not checked (<see cref="Gap"/>).</item>
/// <item>Chain break: see <see cref="ReplayStep.ChainBreak"/>.</item>
/// <item>Triggers: every linked record is fed, in sequence order, to each feed whose
/// <see cref="TriggerFeed.FromSequence"/> it follows.</item>
/// </list>
/// </summary>
internal sealed class DecisionReplay(byte[]? lastHash, IReadOnlyList<TriggerFeed> feeds)
{
    /// <summary>The hash of the last record replayed; null after a gap or before the first known record.</summary>
    public byte[]? LastHash { get; private set; } = lastHash;

    public IReadOnlyList<TriggerFeed> Feeds { get; } = feeds;

    /// <summary>A sequence number is missing: the next record's link cannot be checked.</summary>
    public void Gap() => LastHash = null;

    /// <summary>
    /// Replays the next record: <paramref name="previous"/> is the hash it names for its predecessor
    /// (null when unknown). Firings go to <paramref name="fired"/> with the index of their feed.
    /// </summary>
    public ReplayStep Next(EvidenceFacts record, byte[]? previous, Action<int, TriggerFiring> fired)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(fired);
        var linked = LastHash is null || previous is null || CryptographicOperations.FixedTimeEquals(previous, LastHash);
        LastHash = record.Hash;
        if (!linked)
        {
            return ReplayStep.ChainBreak;
        }

        for (var i = 0; i < Feeds.Count; i++)
        {
            if (record.Sequence > Feeds[i].FromSequence && Feeds[i].Evaluator.Feed(record) is { } firing)
            {
                fired(i, firing);
            }
        }

        return ReplayStep.Fed;
    }

    /// <summary>
    /// The clock's turn, once every stored record was replayed: rules decided on time as well as
    /// records (an absence) may fire at <paramref name="now"/>.
    /// </summary>
    public void Tick(DateTimeOffset now, DateTimeOffset? lastArrival, Action<int, TriggerFiring> fired)
    {
        ArgumentNullException.ThrowIfNull(fired);
        for (var i = 0; i < Feeds.Count; i++)
        {
            if (Feeds[i].Evaluator.Tick(now, lastArrival) is { } firing)
            {
                fired(i, firing);
            }
        }
    }
}
