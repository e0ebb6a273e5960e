using System.Data.Common;
using System.Globalization;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;

namespace ShareVault.Claims.Ingest;

/// <summary>A record of a batch refused for its time: the reason name and its detail (times only, never readings).</summary>
internal sealed record TimeRefusal(StoreOutcome Outcome, string Reason, string Detail);

/// <summary>
/// The time rules a record must meet before it is stored (<see cref="EvidenceTimeLimits"/>): its time
/// lies in the window around its arrival, and it is not timed further back than the allowed step
/// before the device's neighbouring records by sequence — the stored one just before it, and the
/// stored one just after it when it fills a gap — nor than the records before it in the same batch.
/// Checked in the store transaction, so the neighbours are what the database holds at commit.
/// </summary>
internal static class EvidenceTimeline
{
    /// <summary>One entry per record: null to store it, or why it is refused.</summary>
    public static TimeRefusal?[] Check(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, DateTimeOffset arrival, EvidenceTimeLimits limits)
    {
        var refusals = new TimeRefusal?[records.Count];

        // Per device: the times of this batch's accepted records and of the neighbours looked up, by sequence.
        var known = new Dictionary<string, Timeline>(StringComparer.Ordinal);
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            if (!limits.FitsArrival(r.Time, arrival))
            {
                refusals[i] = new TimeRefusal(StoreOutcome.TimeOutOfWindow, RejectionRow.TimeOutOfWindow, limits.DescribeArrival(r.Time, arrival));
                continue;
            }

            if (!known.TryGetValue(r.DeviceId, out var timeline))
            {
                known[r.DeviceId] = timeline = new Timeline(Latest(tx, r.DeviceId));
            }

            if (timeline.Holds(tx, r.DeviceId, r.Sequence))
            {
                continue; // a duplicate or a conflict, which the insert tells apart; nothing new is stored
            }

            var (before, after) = timeline.Neighbours(tx, r.DeviceId, r.Sequence);
            if (before is { } b && !limits.Follows(r.Time, b.Time))
            {
                refusals[i] = new TimeRefusal(StoreOutcome.TimeBeforePrevious, RejectionRow.RecordTimeBeforePrevious,
                    $"record time {Format(r.Time)} is {Seconds(b.Time - r.Time)} s before that of #{b.Sequence} ({Format(b.Time)}); at most {Seconds(limits.MaxStepBack)} s is allowed");
                continue;
            }

            if (after is { } a && !limits.Follows(a.Time, r.Time))
            {
                refusals[i] = new TimeRefusal(StoreOutcome.TimeBeforePrevious, RejectionRow.RecordTimeBeforePrevious,
                    $"record time {Format(r.Time)} is {Seconds(r.Time - a.Time)} s after that of the next record #{a.Sequence} ({Format(a.Time)}); at most {Seconds(limits.MaxStepBack)} s is allowed");
                continue;
            }

            timeline.Add(r.Sequence, r.Time);
        }

        return refusals;
    }

    private static string Format(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);

    private static (long Sequence, DateTimeOffset Time)? Latest(DbTransaction tx, string deviceId) =>
        Sql.Query(tx.Connection!, tx, "SELECT seq, time FROM evidence WHERE device_id=@d ORDER BY seq DESC LIMIT 1",
            r => (r.GetInt64(0), Parse(r.GetString(1))), ("@d", deviceId)) is [var latest] ? latest : null;

    private static (long Sequence, DateTimeOffset Time)? Stored(DbTransaction tx, string deviceId, long seq, bool before) =>
        Sql.Query(tx.Connection!, tx, before
                ? "SELECT seq, time FROM evidence WHERE device_id=@d AND seq<@s ORDER BY seq DESC LIMIT 1"
                : "SELECT seq, time FROM evidence WHERE device_id=@d AND seq>@s ORDER BY seq LIMIT 1",
            r => (r.GetInt64(0), Parse(r.GetString(1))), ("@d", deviceId), ("@s", seq)) is [var found] ? found : null;

    private static DateTimeOffset Parse(string stored) => EvidenceTable.ParseTime(stored);

    /// <summary>
    /// A device's record times as far as this batch needs them. Records arrive mostly in sequence order
    /// after the newest stored one; only a record at or below it (a gap filled late, a duplicate) needs
    /// the stored neighbours looked up.
    /// </summary>
    private sealed class Timeline((long Sequence, DateTimeOffset Time)? latest)
    {
        private readonly SortedList<long, DateTimeOffset> _batch = [];

        public ((long Sequence, DateTimeOffset Time)? Before, (long Sequence, DateTimeOffset Time)? After) Neighbours(DbTransaction tx, string deviceId, long seq)
        {
            var stored = latest is { } l && seq <= l.Sequence
                ? (Stored(tx, deviceId, seq, before: true), Stored(tx, deviceId, seq, before: false))
                : (latest, null);
            (long Sequence, DateTimeOffset Time)? before = stored.Item1, after = stored.Item2;
            var keys = _batch.Keys;
            int lo = 0, hi = keys.Count; // first index whose sequence is above seq
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                (lo, hi) = keys[mid] <= seq ? (mid + 1, hi) : (lo, mid);
            }

            var below = lo > 0 && keys[lo - 1] == seq ? lo - 2 : lo - 1;
            if (below >= 0 && (before is null || keys[below] > before.Value.Sequence))
            {
                before = (keys[below], _batch.Values[below]);
            }

            if (lo < keys.Count && (after is null || keys[lo] < after.Value.Sequence))
            {
                after = (keys[lo], _batch.Values[lo]);
            }

            return (before, after);
        }

        public void Add(long seq, DateTimeOffset time) => _batch[seq] = time;

        /// <summary>True when a record under <paramref name="seq"/> is stored already or accepted earlier in this batch.</summary>
        public bool Holds(DbTransaction tx, string deviceId, long seq) =>
            _batch.ContainsKey(seq)
            || (latest is { } l && seq <= l.Sequence && Sql.Exists(tx, "SELECT 1 FROM evidence WHERE device_id=@d AND seq=@s", ("@d", deviceId), ("@s", seq)));
    }
}
