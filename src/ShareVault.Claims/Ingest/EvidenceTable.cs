using System.Data.Common;
using System.Globalization;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ingest;

/// <summary>
/// The <c>evidence</c> table: inserts a batch (deduplicated by device and sequence), and reads
/// records back for evaluation and for the read API.
/// </summary>
internal sealed class EvidenceTable(ClaimsDatabase db)
{
    private const string InsertSql = "INSERT INTO evidence(device_id,seq,time,received_at,hash,cose,readings,prev) VALUES (@d,@s,@t,@r,@h,@c,@j,@pr) ON CONFLICT DO NOTHING";

    /// <summary>Devices per <see cref="Pending"/> statement (three parameters each).</summary>
    private const int RangeChunk = 300;

    /// <summary>PostgreSQL commands sent per round trip when inserting evidence.</summary>
    private const int BatchSize = 256;

    /// <summary>
    /// Inserts the records in order and says what became of each: stored, a duplicate (the same
    /// hash is already stored under that sequence) or a conflict (another record holds it).
    /// </summary>
    public StoreOutcome[] Insert(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, string stamp)
    {
        var outcomes = new StoreOutcome[records.Count];
        var inserted = db.Dialect == SqlDialect.PostgreSql ? InsertBatched(tx, records, stamp) : InsertEach(tx, records, stamp);
        using var existing = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT hash FROM evidence WHERE device_id=@d AND seq=@s", ("@d", ""), ("@s", 0L));
        for (var i = 0; i < records.Count; i++)
        {
            if (inserted[i])
            {
                outcomes[i] = StoreOutcome.Stored;
                continue;
            }

            // Not inserted: a row was already there (stored earlier, or earlier in this batch);
            // ON CONFLICT DO NOTHING never changes it, so looking it up after all inserts sees
            // the same row as looking it up right after this record's insert.
            existing.Parameters["@d"].Value = records[i].DeviceId;
            existing.Parameters["@s"].Value = records[i].Sequence;
            var stored = existing.ExecuteScalar() as byte[];
            outcomes[i] = stored is not null && stored.AsSpan().SequenceEqual(records[i].Hash) ? StoreOutcome.Duplicate : StoreOutcome.Conflict;
        }

        return outcomes;
    }

    /// <summary>The stored record at <paramref name="seq"/> and the previous hash it names, or nulls when none is stored.</summary>
    public static (EvidenceFacts? Facts, byte[]? Previous) Facts(DbTransaction tx, string deviceId, long seq)
    {
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT hash, readings, prev, time FROM evidence WHERE device_id=@d AND seq=@s", ("@d", deviceId), ("@s", seq));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? (new EvidenceFacts(deviceId, seq, ParseTime(reader.GetString(3)), (byte[])reader[0], ReadingsJson.Read(reader.GetString(1))), reader.IsDBNull(2) ? null : (byte[])reader[2])
            : (null, null);
    }

    /// <summary>
    /// Stored records of several devices in a sequence range each (From exclusive, To inclusive), by
    /// device and sequence, with the previous hash each names and when it arrived: the records
    /// evaluation will feed next, read in one statement per <see cref="RangeChunk"/> devices instead
    /// of one per record.
    /// </summary>
    public static Dictionary<string, SortedList<long, PendingRecord>> Pending(DbTransaction tx, IReadOnlyList<(string DeviceId, long From, long To)> ranges)
    {
        var pending = new Dictionary<string, SortedList<long, PendingRecord>>(StringComparer.Ordinal);
        foreach (var chunk in ranges.Chunk(RangeChunk))
        {
            var conditions = new List<string>(chunk.Length);
            var parameters = new List<(string Name, object? Value)>(chunk.Length * 3);
            for (var i = 0; i < chunk.Length; i++)
            {
                var n = i.ToString(CultureInfo.InvariantCulture);
                conditions.Add($"(device_id=@d{n} AND seq>@a{n} AND seq<=@b{n})");
                parameters.AddRange([($"@d{n}", chunk[i].DeviceId), ($"@a{n}", chunk[i].From), ($"@b{n}", chunk[i].To)]);
            }

            using var command = ClaimsDatabase.Command(tx.Connection!, tx, $"SELECT device_id, seq, hash, readings, prev, time, received_at FROM evidence WHERE {string.Join(" OR ", conditions)}", [.. parameters]);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var device = reader.GetString(0);
                var seq = reader.GetInt64(1);
                if (!pending.TryGetValue(device, out var bySeq))
                {
                    pending[device] = bySeq = [];
                }

                var facts = new EvidenceFacts(device, seq, ParseTime(reader.GetString(5)), (byte[])reader[2], ReadingsJson.Read(reader.GetString(3)));
                bySeq[seq] = new PendingRecord(facts, reader.IsDBNull(4) ? null : (byte[])reader[4], reader.GetString(6));
            }
        }

        return pending;
    }

    /// <summary>The stored records up to <paramref name="evaluatedSequence"/>, in order (to rebuild an evaluator).</summary>
    public static List<EvidenceFacts> FactsThrough(DbTransaction tx, string deviceId, long evaluatedSequence) =>
        Sql.Query(tx.Connection!, tx, "SELECT seq, hash, readings, time FROM evidence WHERE device_id=@d AND seq<=@s ORDER BY seq",
            r => new EvidenceFacts(deviceId, r.GetInt64(0), ParseTime(r.GetString(3)), (byte[])r[1], ReadingsJson.Read(r.GetString(2))), ("@d", deviceId), ("@s", evaluatedSequence));

    /// <summary>A stored record time (<see cref="LedgerEntry.FormatTime"/>: UTC, milliseconds, the wire precision).</summary>
    public static DateTimeOffset ParseTime(string stored) =>
        DateTimeOffset.Parse(stored, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal);

    /// <summary>The first stored record after a missing <paramref name="seq"/> and when it was received, or null.</summary>
    public static (long Sequence, string ReceivedAt)? FirstAfter(DbTransaction tx, string deviceId, long seq) =>
        Sql.Query(tx.Connection!, tx, "SELECT seq, received_at FROM evidence WHERE device_id=@d AND seq>@s ORDER BY seq LIMIT 1",
            r => (r.GetInt64(0), r.GetString(1)), ("@d", deviceId), ("@s", seq)) is [var first] ? first : null;

    /// <summary>When a stored record arrived, or null when it is not stored (any more).</summary>
    public static DateTimeOffset? ReceivedAt(DbTransaction tx, string deviceId, long seq) =>
        Sql.Query(tx.Connection!, tx, "SELECT received_at FROM evidence WHERE device_id=@d AND seq=@s",
            r => r.GetString(0), ("@d", deviceId), ("@s", seq)) is [var at] ? DateTimeOffset.Parse(at, CultureInfo.InvariantCulture) : null;

    /// <summary>Stored evidence of a device: sequence, time, hash, COSE bytes.</summary>
    public IReadOnlyList<StoredEvidence> List(string deviceId, long fromSeq, int limit)
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT seq,time,received_at,hash,cose,readings FROM evidence WHERE device_id=@d AND seq>=@s ORDER BY seq LIMIT @l",
            r => new StoredEvidence(deviceId, r.GetInt64(0), r.GetString(1), r.GetString(2), (byte[])r[3], (byte[])r[4], r.GetString(5)),
            ("@d", deviceId), ("@s", fromSeq), ("@l", limit));
    }

    public long Count()
    {
        using var c = db.OpenReader();
        return Sql.Int64(c, null, "SELECT COUNT(*) FROM evidence");
    }

    /// <summary>Inserts each record in order, one statement each (SQLite: no round trip, the engine is in process); true where a row was inserted.</summary>
    private static bool[] InsertEach(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, string stamp)
    {
        var inserted = new bool[records.Count];
        if (records.Count == 0)
        {
            return inserted; // a batch of rejections only
        }

        using var insert = ClaimsDatabase.Command(tx.Connection!, tx, InsertSql, Values(records[0], stamp));
        for (var i = 0; i < records.Count; i++)
        {
            foreach (var (name, value) in Values(records[i], stamp))
            {
                insert.Parameters[name].Value = value ?? DBNull.Value;
            }

            inserted[i] = insert.ExecuteNonQuery() == 1;
        }

        return inserted;
    }

    /// <summary>
    /// As <see cref="InsertEach"/>, the same statement per record in the same order, but sent as
    /// one batch of up to <see cref="BatchSize"/> commands per round trip: over a network
    /// every statement otherwise costs a round trip (~130 µs on loopback), which made the evidence
    /// inserts half of PostgreSQL's commit time. Each command's row count says whether it inserted.
    /// </summary>
    private static bool[] InsertBatched(DbTransaction tx, IReadOnlyList<VerifiedRecord> records, string stamp)
    {
        var inserted = new bool[records.Count];
        for (var start = 0; start < records.Count; start += BatchSize)
        {
            var count = Math.Min(BatchSize, records.Count - start);
            using var batch = tx.Connection!.CreateBatch();
            batch.Transaction = tx;
            for (var i = start; i < start + count; i++)
            {
                Sql.Add(batch, InsertSql, Values(records[i], stamp));
            }

            batch.ExecuteNonQuery();
            for (var i = 0; i < count; i++)
            {
                inserted[start + i] = batch.BatchCommands[i].RecordsAffected == 1;
            }
        }

        return inserted;
    }

    /// <summary>The parameters of <see cref="InsertSql"/> for one record.</summary>
    private static (string Name, object? Value)[] Values(VerifiedRecord r, string stamp) =>
    [
        ("@d", r.DeviceId), ("@s", r.Sequence), ("@t", LedgerEntry.FormatTime(r.Time)), ("@r", stamp),
        ("@h", r.Hash), ("@c", r.Cose), ("@j", ReadingsJson.Write(r.Readings)), ("@pr", r.PreviousHash),
    ];
}

/// <summary>A stored record waiting for evaluation: its facts, the previous hash it names, and when it arrived (<see cref="LedgerEntry.FormatTime"/>).</summary>
internal sealed record PendingRecord(EvidenceFacts Facts, byte[]? Previous, string ReceivedAt);
