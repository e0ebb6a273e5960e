using System.Data.Common;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ingest;

/// <summary>A run of missing sequence numbers; <paramref name="SkippedAt"/>: when evaluation moved past it (null while it waits).</summary>
public sealed record GapRow(long From, long To, string DetectedAt, string? SkippedAt);

/// <summary>The <c>gaps</c> and <c>chain_breaks</c> tables: what the replay found in a device's stream.</summary>
internal sealed class ChainFindings(ClaimsDatabase db)
{
    /// <summary>
    /// Records a gap from <paramref name="from"/> up to <paramref name="to"/>. A gap seen again may
    /// have narrowed (records inside it arrived): to_seq is what a skip moves past, so it is kept
    /// current until then.
    /// </summary>
    public static void RecordGap(DeferredWrites writes, string deviceId, long from, long to, string now) =>
        writes.Add("INSERT INTO gaps(device_id,from_seq,to_seq,detected_at) VALUES (@d,@f,@t,@n) ON CONFLICT (device_id,from_seq) DO UPDATE SET to_seq=excluded.to_seq WHERE gaps.skipped_at IS NULL",
            ("@d", deviceId), ("@f", from), ("@t", to), ("@n", now));

    public static void SkipGap(DeferredWrites writes, string deviceId, long from, string now) =>
        writes.Add("UPDATE gaps SET skipped_at=@n WHERE device_id=@d AND from_seq=@f", ("@n", now), ("@d", deviceId), ("@f", from));

    public static void RecordBreak(DeferredWrites writes, string deviceId, long seq, byte[] expected, byte[] found, string now) =>
        writes.Add("INSERT INTO chain_breaks(device_id,seq,expected,found,detected_at) VALUES (@d,@s,@e,@f,@n) ON CONFLICT DO NOTHING",
            ("@d", deviceId), ("@s", seq), ("@e", expected), ("@f", found), ("@n", now));

    public IReadOnlyList<GapRow> Gaps(string deviceId)
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT from_seq,to_seq,detected_at,skipped_at FROM gaps WHERE device_id=@d ORDER BY from_seq",
            r => new GapRow(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3)), ("@d", deviceId));
    }

    /// <summary>Records stored but not evaluated because their previous hash did not match their predecessor's.</summary>
    public IReadOnlyList<ChainBreak> Breaks(string? deviceId)
    {
        using var c = db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("device_id", deviceId));
        return Sql.Query(c, null, $"SELECT device_id,seq,expected,found,detected_at FROM chain_breaks{where} ORDER BY device_id, seq",
            r => new ChainBreak(r.GetString(0), r.GetInt64(1), Convert.ToHexStringLower((byte[])r[2]), Convert.ToHexStringLower((byte[])r[3]), r.GetString(4)), parameters);
    }
}
