using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Devices;

/// <summary>
/// The <c>devices</c> table and this process's cache of enrolled keys. Every record's signature is
/// checked under its device's key, so the key is answered from memory; a device enrolled by another
/// process (the CLI, another instance) is found with one row read.
/// </summary>
internal sealed class DeviceDirectory
{
    private static readonly TimeSpan UnknownDeviceRecheck = TimeSpan.FromSeconds(1);

    private readonly ClaimsDatabase _db;
    private readonly LedgerBook _ledger;
    private readonly TimeProvider _time;
    // Written under lock(_known); read without it: every record's verification asks for its key on all
    // cores, and a profile of ingest over MQTT showed that lock contended (Monitor.Enter_Slowpath).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DeviceInfo> _known = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _unknown = new(StringComparer.Ordinal);

    public DeviceDirectory(ClaimsDatabase db, LedgerBook ledger, TimeProvider time)
    {
        _db = db;
        _ledger = ledger;
        _time = time;
        Reload();
    }

    /// <summary>Binds a device (its P-256 key, SubjectPublicKeyInfo DER) to a member, with its <c>device_enrolled</c> entry.</summary>
    public void Insert(DbTransaction tx, string poolId, string memberId, string deviceId, byte[] publicKeySpki, string now, JsonObject? admin, JsonObject? memberSig = null)
    {
        var body = RegistryChange.DeviceEnrolled(deviceId, memberId, publicKeySpki);

        // The member signs first; an administrator's signature then covers the member's (AdminSignature.SignedBytes keeps member_sig).
        MemberActions.Attach(poolId, LedgerEntry.DeviceEnrolled, body, memberId, MemberActions.Key(tx.Connection!, tx, poolId, memberId), memberSig);
        RegistryAdmin.Attach(poolId, LedgerEntry.DeviceEnrolled, body, RegistryAdmin.Keys(tx, poolId), admin);
        if (Sql.Exists(tx, "SELECT 1 FROM devices WHERE id=@id", ("@id", deviceId)))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Device '{deviceId}' is already enrolled");
        }

        Sql.Exec(tx, "INSERT INTO devices(id,pool_id,member_id,public_key,enrolled_at) VALUES (@id,@p,@m,@k,@t)",
            ("@id", deviceId), ("@p", poolId), ("@m", memberId), ("@k", publicKeySpki), ("@t", now));
        _ledger.Append(tx, poolId, LedgerEntry.DeviceEnrolled, body);
    }

    /// <summary>Caches the enrolled devices' keys.</summary>
    public void Reload()
    {
        var rows = List(null);
        lock (_known)
        {
            foreach (var row in rows)
            {
                _known.TryAdd(row.Id, new DeviceInfo(row.Id, row.PoolId, row.MemberId, row.PublicKey));
                _unknown.Remove(row.Id);
            }
        }
    }

    /// <summary>The enrolled key of a device, or null when the device is unknown.</summary>
    public DeviceInfo? Find(string deviceId)
    {
        if (_known.TryGetValue(deviceId, out var d))
        {
            return d;
        }

        var now = _time.GetUtcNow();
        lock (_known)
        {

            // Asked about very recently and not enrolled then: answer from memory, so a stream of
            // records from an unknown device costs one lookup a second, not one per record.
            if (_unknown.TryGetValue(deviceId, out var askedAt) && now - askedAt < UnknownDeviceRecheck)
            {
                return null;
            }
        }

        DeviceRow? row;
        using (var c = _db.OpenReader())
        {
            row = Rows(c, null, ("id", deviceId)).SingleOrDefault();
        }

        lock (_known)
        {
            if (row is null)
            {
                if (_unknown.Count > 10_000)
                {
                    _unknown.Clear(); // bounded: ids come from untrusted input
                }

                _unknown[deviceId] = now;
                return null;
            }

            _unknown.Remove(deviceId);
            return Remember(row);
        }
    }

    /// <summary>An enrolled device inside a write transaction (enrolled by another process since this one cached, too).</summary>
    public DeviceInfo Enrolled(DbTransaction tx, string deviceId)
    {
        lock (_known)
        {
            if (_known.TryGetValue(deviceId, out var d))
            {
                return d;
            }
        }

        var row = Rows(tx.Connection!, tx, ("id", deviceId)).SingleOrDefault() ?? throw new ClaimsException(ClaimsError.NotFound, $"Device '{deviceId}' is not enrolled");
        lock (_known)
        {
            return Remember(row);
        }
    }

    /// <summary>Caches the keys of those of <paramref name="deviceIds"/> not cached yet (enrolled by another process), one statement per <see cref="Sql.InChunk"/> devices.</summary>
    public void Remember(DbTransaction tx, IReadOnlyList<string> deviceIds)
    {
        List<string> unknown;
        lock (_known)
        {
            unknown = [.. deviceIds.Where(id => !_known.ContainsKey(id))];
        }

        foreach (var chunk in unknown.Chunk(Sql.InChunk))
        {
            var (inList, parameters) = Sql.In("id", chunk, "d");
            var rows = Sql.Query(tx.Connection!, tx, $"SELECT id,pool_id,member_id,public_key,enrolled_at,evaluated_seq,max_seq FROM devices WHERE {inList}",
                r => new DeviceRow(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetString(4), r.GetInt64(5), r.GetInt64(6)), parameters);
            lock (_known)
            {
                foreach (var row in rows)
                {
                    Remember(row);
                }
            }
        }
    }

    public IReadOnlyList<DeviceRow> List(string? poolId)
    {
        using var c = _db.OpenReader();
        return Rows(c, null, ("pool_id", poolId));
    }

    /// <summary>Devices with stored records beyond their evaluated prefix (waiting at a gap).</summary>
    public IReadOnlyList<string> WaitingAtGap()
    {
        using var c = _db.OpenReader();
        return Sql.Query(c, null, "SELECT id FROM devices WHERE max_seq > evaluated_seq ORDER BY id", r => r.GetString(0));
    }

    public static EvaluationCursor Cursor(DbTransaction tx, string deviceId)
    {
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT evaluated_seq, max_seq, state_version, last_hash FROM devices WHERE id=@d", ("@d", deviceId));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new EvaluationCursor(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : (byte[])reader[3])
            : throw new ClaimsException(ClaimsError.NotFound, $"Device '{deviceId}' is no longer enrolled");
    }

    /// <summary>The evaluation cursors of several devices, one statement per <see cref="Sql.InChunk"/> devices (a device no longer enrolled is absent).</summary>
    public static Dictionary<string, EvaluationCursor> Cursors(DbTransaction tx, IReadOnlyList<string> deviceIds)
    {
        var cursors = new Dictionary<string, EvaluationCursor>(StringComparer.Ordinal);
        foreach (var chunk in deviceIds.Chunk(Sql.InChunk))
        {
            var (inList, parameters) = Sql.In("id", chunk, "d");
            using var command = ClaimsDatabase.Command(tx.Connection!, tx, $"SELECT id, evaluated_seq, max_seq, state_version, last_hash FROM devices WHERE {inList}", parameters);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                cursors[reader.GetString(0)] = new EvaluationCursor(reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.IsDBNull(4) ? null : (byte[])reader[4]);
            }
        }

        return cursors;
    }

    public static void SaveCursor(DeferredWrites writes, string deviceId, EvaluationCursor cursor) =>
        writes.Add("UPDATE devices SET evaluated_seq=@e, max_seq=@m, last_hash=@h, state_version=@v WHERE id=@d",
            ("@e", cursor.EvaluatedSequence), ("@m", cursor.MaxSequence), ("@h", cursor.LastHash), ("@v", cursor.Version), ("@d", deviceId));

    /// <summary>
    /// Bumping a device's state version tells every service instance (this one, or one in another
    /// process) to reload that device's evaluators before it evaluates again.
    /// </summary>
    public static void InvalidateEvaluation(DbTransaction tx, string poolId, string memberId) =>
        Sql.Exec(tx, "UPDATE devices SET state_version=state_version+1 WHERE pool_id=@p AND member_id=@m", ("@p", poolId), ("@m", memberId));

    private DeviceInfo Remember(DeviceRow row) =>
        _known.TryGetValue(row.Id, out var known) ? known : _known[row.Id] = new DeviceInfo(row.Id, row.PoolId, row.MemberId, row.PublicKey);

    /// <summary>Device rows matching the filters that have a value (<see cref="ClaimsDatabase.Where"/>).</summary>
    private static List<DeviceRow> Rows(DbConnection c, DbTransaction? tx, params (string Column, object? Value)[] filters)
    {
        var (where, parameters) = ClaimsDatabase.Where(filters);
        return Sql.Query(c, tx, $"SELECT id,pool_id,member_id,public_key,enrolled_at,evaluated_seq,max_seq FROM devices{where} ORDER BY id",
            r => new DeviceRow(r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r[3], r.GetString(4), r.GetInt64(5), r.GetInt64(6)), parameters);
    }
}
