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

        // Per device: the times of this batch's accepted records and of the neighbours looked up, by
        // sequence; every device's newest stored record is read for the whole batch at once.
        var known = new Dictionary<string, Timeline>(StringComparer.Ordinal);
        var latest = Latest(tx, [.. records.Where(r => limits.FitsArrival(r.Time, arrival)).Select(r => r.DeviceId).Distinct(StringComparer.Ordinal)]);

        // Records at or below their device's newest stored one (a gap filled late: under a shared
        // subscription, one another process left) need their stored neighbours: read for every
        // device at once, the stored rows across the span of its late records and one on each side.
        var late = records.Where(r => limits.FitsArrival(r.Time, arrival) && latest.TryGetValue(r.DeviceId, out var l) && r.Sequence <= l.Sequence)
            .GroupBy(r => r.DeviceId, StringComparer.Ordinal)
            .Select(g => (DeviceId: g.Key, From: g.Min(r => r.Sequence), To: g.Max(r => r.Sequence)))
            .Where(g => g.To - g.From <= MaxNearSpan).ToList();
        var near = late.Count > 0 ? Near(tx, late) : [];
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
                known[r.DeviceId] = timeline = new Timeline(latest.TryGetValue(r.DeviceId, out var newest) ? newest : null, near.GetValueOrDefault(r.DeviceId));
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

    /// <summary>
    /// The newest stored record (sequence, time) of each device that has one: one statement per
    /// <see cref="Sql.InChunk"/> devices, each device's maximum found through the (device_id, seq) key,
    /// instead of one round trip per device.
    /// </summary>
    private static Dictionary<string, (long Sequence, DateTimeOffset Time)> Latest(DbTransaction tx, IReadOnlyList<string> deviceIds)
    {
        var latest = new Dictionary<string, (long Sequence, DateTimeOffset Time)>(StringComparer.Ordinal);
        foreach (var chunk in deviceIds.Chunk(Sql.InChunk))
        {
            var (inList, parameters) = Sql.In("d.id", chunk, "d");
            foreach (var (device, seq, time) in Sql.Query(tx.Connection!, tx,
                $"SELECT e.device_id, e.seq, e.time FROM devices d JOIN evidence e ON e.device_id=d.id AND e.seq=(SELECT MAX(seq) FROM evidence m WHERE m.device_id=d.id) WHERE {inList}",
                r => (r.GetString(0), r.GetInt64(1), Parse(r.GetString(2))), parameters))
            {
                latest[device] = (seq, time);
            }
        }

        return latest;
    }

    /// <summary>Widest sequence span of a device's late records in one batch read as <see cref="Near"/> rows (wider: looked up record by record).</summary>
    private const int MaxNearSpan = 4096;

    /// <summary>Devices per <see cref="Near"/> statement (three parts and three parameters each).</summary>
    private const int NearChunk = 100;

    /// <summary>
    /// Per device, every stored (sequence, time) in [From, To] and the nearest stored one below From
    /// and above To: one statement per <see cref="NearChunk"/> devices, each part an index range scan.
    /// </summary>
    private static Dictionary<string, NearRows> Near(DbTransaction tx, List<(string DeviceId, long From, long To)> spans)
    {
        var near = new Dictionary<string, NearRows>(StringComparer.Ordinal);
        foreach (var span in spans)
        {
            near[span.DeviceId] = new NearRows(span.From, span.To, []);
        }

        foreach (var chunk in spans.Chunk(NearChunk))
        {
            var parts = new List<string>(chunk.Length * 3);
            var parameters = new List<(string Name, object? Value)>(chunk.Length * 3);
            for (var i = 0; i < chunk.Length; i++)
            {
                var n = i.ToString(CultureInfo.InvariantCulture);
                parts.Add($"SELECT device_id, seq, time FROM evidence WHERE device_id=@d{n} AND seq>=@a{n} AND seq<=@b{n}");
                parts.Add($"SELECT * FROM (SELECT device_id, seq, time FROM evidence WHERE device_id=@d{n} AND seq<@a{n} ORDER BY seq DESC LIMIT 1) below{n}");
                parts.Add($"SELECT * FROM (SELECT device_id, seq, time FROM evidence WHERE device_id=@d{n} AND seq>@b{n} ORDER BY seq LIMIT 1) above{n}");
                parameters.AddRange([($"@d{n}", chunk[i].DeviceId), ($"@a{n}", chunk[i].From), ($"@b{n}", chunk[i].To)]);
            }

            foreach (var (device, seq, time) in Sql.Query(tx.Connection!, tx, string.Join(" UNION ALL ", parts), r => (r.GetString(0), r.GetInt64(1), Parse(r.GetString(2))), [.. parameters]))
            {
                near[device].Rows[seq] = time;
            }
        }

        return near;
    }

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
    private sealed class Timeline((long Sequence, DateTimeOffset Time)? latest, NearRows? near)
    {
        private readonly SortedList<long, DateTimeOffset> _batch = [];

        public ((long Sequence, DateTimeOffset Time)? Before, (long Sequence, DateTimeOffset Time)? After) Neighbours(DbTransaction tx, string deviceId, long seq)
        {
            var stored = latest is { } l && seq <= l.Sequence
                ? near is { } n && n.Covers(seq) ? (n.Before(seq), n.After(seq)) : (Stored(tx, deviceId, seq, before: true), Stored(tx, deviceId, seq, before: false))
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
            || (latest is { } l && seq <= l.Sequence && (near is { } n && n.Covers(seq) ? n.Rows.ContainsKey(seq)
                : Sql.Exists(tx, "SELECT 1 FROM evidence WHERE device_id=@d AND seq=@s", ("@d", deviceId), ("@s", seq))));
    }

    /// <summary>What <see cref="Near"/> read for a device: every stored row in [From, To], and the nearest one outside on each side.</summary>
    private sealed record NearRows(long From, long To, SortedList<long, DateTimeOffset> Rows)
    {
        public bool Covers(long seq) => seq >= From && seq <= To;

        public (long Sequence, DateTimeOffset Time)? Before(long seq)
        {
            (long, DateTimeOffset)? found = null;
            foreach (var (s, time) in Rows)
            {
                if (s >= seq)
                {
                    break;
                }

                found = (s, time);
            }

            return found;
        }

        public (long Sequence, DateTimeOffset Time)? After(long seq)
        {
            foreach (var (s, time) in Rows)
            {
                if (s > seq)
                {
                    return (s, time);
                }
            }

            return null;
        }
    }
}
