using System.Data.Common;
using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// The <c>ledger</c> and <c>checkpoints</c> tables: appends chained entries inside the caller's
/// write transaction, reads a pool's entries and checkpoints, and decides when a checkpoint is due.
/// </summary>
internal sealed class LedgerBook(ClaimsDatabase db, TimeProvider time, int checkpointEvery, TimeSpan checkpointInterval)
{
    /// <summary>Appends an entry after the pool's head (or the genesis hash) in <paramref name="tx"/>; returns it.</summary>
    public LedgerEntry Append(DbTransaction tx, string poolId, string kind, JsonObject body)
    {
        var head = Head(tx.Connection!, tx, poolId);
        var entry = LedgerEntry.Create(poolId, (head?.Seq ?? 0) + 1, time.GetUtcNow(), kind, body, head?.Hash ?? LedgerEntry.Genesis);
        Sql.Exec(tx, "INSERT INTO ledger(pool_id,seq,time,kind,body,prev,hash) VALUES (@p,@s,@t,@k,@b,@pr,@h)",
            ("@p", poolId), ("@s", entry.Sequence), ("@t", entry.Time), ("@k", kind), ("@b", CanonicalJson.SerializeToString(body)), ("@pr", entry.Previous), ("@h", entry.Hash));
        return entry;
    }

    public (long Seq, string Hash)? Head(string poolId)
    {
        using var c = db.OpenReader();
        return Head(c, null, poolId);
    }

    /// <summary>The pool's entries with <paramref name="after"/> &lt; seq ≤ <paramref name="upTo"/>, as JSON (what a custody node's replica needs).</summary>
    public JsonArray EntriesAfter(string poolId, long after, long upTo = long.MaxValue)
    {
        using var c = db.OpenReader();
        var entries = Sql.Query(c, null, "SELECT seq,time,kind,body,prev,hash FROM ledger WHERE pool_id=@p AND seq>@a AND seq<=@u ORDER BY seq",
            r => new LedgerEntry(poolId, r.GetInt64(0), r.GetString(1), r.GetString(2), JsonNode.Parse(r.GetString(3))!.AsObject(), r.GetString(4), r.GetString(5)),
            ("@p", poolId), ("@a", after), ("@u", upTo));
        return new JsonArray([.. entries.Select(e => (JsonNode)e.ToJson())]);
    }

    public IReadOnlyList<LedgerEntry> Entries(string poolId)
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT seq,time,kind,body,prev,hash FROM ledger WHERE pool_id=@p ORDER BY seq",
            r => new LedgerEntry(poolId, r.GetInt64(0), r.GetString(1), r.GetString(2), JsonNode.Parse(r.GetString(3))!.AsObject(), r.GetString(4), r.GetString(5)), ("@p", poolId));
    }

    public IReadOnlyList<LedgerCheckpoint> Checkpoints(string poolId)
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT seq,hash,time,jws FROM checkpoints WHERE pool_id=@p ORDER BY seq",
            r => new LedgerCheckpoint(poolId, r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3)), ("@p", poolId));
    }

    /// <summary>
    /// The checkpoint to sign now over the pool's head, or null: none when the head is already
    /// checkpointed, else when forced or when N entries or T minutes have passed since the last one.
    /// </summary>
    public (long Seq, string Hash)? CheckpointTarget(string poolId, bool force)
    {
        var head = Head(poolId);
        if (head is null)
        {
            return null;
        }

        var all = Checkpoints(poolId);
        var last = all.Count > 0 ? all[^1] : null;
        return (last is not null && head.Value.Seq <= last.Sequence) || !(force || IsDue(poolId, head.Value.Seq, last)) ? null : head;
    }

    public static void InsertCheckpoint(DbTransaction tx, LedgerCheckpoint checkpoint) =>
        Sql.Exec(tx, "INSERT INTO checkpoints(pool_id,seq,hash,time,jws) VALUES (@p,@s,@h,@t,@j) ON CONFLICT DO NOTHING",
            ("@p", checkpoint.Pool), ("@s", checkpoint.Sequence), ("@h", checkpoint.Hash), ("@t", checkpoint.Time), ("@j", checkpoint.Jws));

    private bool IsDue(string poolId, long headSeq, LedgerCheckpoint? last)
    {
        var since = last is null ? DateTimeOffset.Parse(Entries(poolId)[0].Time, CultureInfo.InvariantCulture) : DateTimeOffset.Parse(last.Time, CultureInfo.InvariantCulture);
        return headSeq - (last?.Sequence ?? 0) >= checkpointEvery || time.GetUtcNow() - since >= checkpointInterval;
    }

    private static (long Seq, string Hash)? Head(DbConnection c, DbTransaction? tx, string poolId)
    {
        using var command = ClaimsDatabase.Command(c, tx, "SELECT seq, hash FROM ledger WHERE pool_id=@p ORDER BY seq DESC LIMIT 1", ("@p", poolId));
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetString(1)) : null;
    }
}
