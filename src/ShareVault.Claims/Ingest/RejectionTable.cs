using System.Data.Common;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ingest;

/// <summary>The <c>rejections</c> table: every refused record with its reason, counted across restarts.</summary>
internal sealed class RejectionTable(ClaimsDatabase db)
{
    public static void Insert(DeferredWrites writes, RejectionRow r) =>
        writes.Add("INSERT INTO rejections(received_at,device_id,topic,seq,reason,detail,size) VALUES (@t,@d,@to,@s,@r,@de,@z)",
            ("@t", r.ReceivedAt), ("@d", r.DeviceId), ("@to", r.Topic), ("@s", r.Sequence), ("@r", r.Reason), ("@de", r.Detail), ("@z", r.Size));

    /// <summary>Stored rejections, newest first, optionally for one device or reason.</summary>
    public IReadOnlyList<RejectionRow> List(string? deviceId, string? reason, int limit)
    {
        using var c = db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("device_id", deviceId), ("reason", reason));
        return Sql.Query(c, null, $"SELECT received_at,device_id,topic,seq,reason,detail,size FROM rejections{where} ORDER BY id DESC LIMIT @l",
            r => new RejectionRow(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.GetString(4), r.GetString(5), (int)r.GetInt64(6)),
            [.. parameters, ("@l", (long)limit)]);
    }

    /// <summary>Rejection counts by reason.</summary>
    public IReadOnlyDictionary<string, long> Counts()
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT reason, COUNT(*) FROM rejections GROUP BY reason ORDER BY reason", r => (r.GetString(0), r.GetInt64(1)))
            .ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
    }
}
