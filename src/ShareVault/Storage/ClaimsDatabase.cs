using Microsoft.Data.Sqlite;

namespace ShareVault.Storage;

/// <summary>
/// The claims service's SQLite file: pools, members, policies, devices, evidence, rejections,
/// claims, payouts and the hash-chained ledger. One writer connection (SQLite allows one writer);
/// readers open their own connections, which WAL lets run beside the writer.
/// </summary>
/// <remarks>
/// Durability: WAL journal with <c>synchronous=FULL</c>. A receipt tells the device agent it may
/// delete the record from its outbox, so a commit must survive a power cut before the receipt goes
/// out. With <c>NORMAL</c> a WAL commit is not fsynced and the last transactions can roll back after
/// power loss (sqlite.org/pragma.html#pragma_synchronous); FULL syncs the WAL on every commit, and
/// batching many records per transaction amortises that fsync.
/// </remarks>
internal sealed class ClaimsDatabase : IDisposable
{
    public const int SchemaVersion = 1;

    private readonly SqliteConnection _writer;

    public ClaimsDatabase(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        ConnectionString = new SqliteConnectionStringBuilder { DataSource = Path, Pooling = true, DefaultTimeout = 30 }.ToString();
        _writer = new SqliteConnection(ConnectionString);
        _writer.Open();
        Execute(_writer, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        CreateSchema();
    }

    public string Path { get; }

    public string ConnectionString { get; }

    /// <summary>The single writer connection; callers serialise access (see <see cref="ShareVault.Claims.ClaimsEngine"/>).</summary>
    public SqliteConnection Writer => _writer;

    /// <summary>A new read connection (caller disposes).</summary>
    public SqliteConnection OpenReader()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        Execute(connection, "PRAGMA busy_timeout=30000;");
        return connection;
    }

    public static int Execute(SqliteConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, null, sql, parameters);
        return command.ExecuteNonQuery();
    }

    public static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var command = connection.CreateCommand();
#pragma warning disable CA2100 // SQL text is constant; values always go through parameters.
        command.CommandText = sql;
#pragma warning restore CA2100
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    public static object? Scalar(SqliteConnection connection, SqliteTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    public void Dispose()
    {
        _writer.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(ConnectionString));
    }

    private void CreateSchema()
    {
        Execute(_writer, """
            CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS pools (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL, key_name TEXT NOT NULL,
                max_payout INTEGER NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS members (
                pool_id TEXT NOT NULL REFERENCES pools(id), id TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
                PRIMARY KEY (pool_id, id));
            CREATE TABLE IF NOT EXISTS policies (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL,
                rule_text TEXT NOT NULL, rule_hash TEXT NOT NULL, payout_amount INTEGER NOT NULL,
                votes_required INTEGER NOT NULL, context TEXT NOT NULL, created_at TEXT NOT NULL,
                FOREIGN KEY (pool_id, member_id) REFERENCES members(pool_id, id));
            CREATE TABLE IF NOT EXISTS premiums (
                id INTEGER PRIMARY KEY AUTOINCREMENT, pool_id TEXT NOT NULL, member_id TEXT NOT NULL,
                amount INTEGER NOT NULL, paid_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS devices (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL, public_key BLOB NOT NULL,
                enrolled_at TEXT NOT NULL, evaluated_seq INTEGER NOT NULL DEFAULT -1, max_seq INTEGER NOT NULL DEFAULT -1,
                FOREIGN KEY (pool_id, member_id) REFERENCES members(pool_id, id));
            CREATE TABLE IF NOT EXISTS evidence (
                device_id TEXT NOT NULL REFERENCES devices(id), seq INTEGER NOT NULL, time TEXT NOT NULL,
                received_at TEXT NOT NULL, hash BLOB NOT NULL, cose BLOB NOT NULL, readings TEXT NOT NULL,
                PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS gaps (
                device_id TEXT NOT NULL, from_seq INTEGER NOT NULL, to_seq INTEGER NOT NULL, detected_at TEXT NOT NULL,
                skipped_at TEXT, PRIMARY KEY (device_id, from_seq));
            CREATE TABLE IF NOT EXISTS rejections (
                id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, device_id TEXT, topic TEXT NOT NULL,
                seq INTEGER, reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS rejections_reason ON rejections(reason);
            CREATE TABLE IF NOT EXISTS claims (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL, policy_id TEXT NOT NULL REFERENCES policies(id),
                device_id TEXT NOT NULL, start_seq INTEGER NOT NULL, status TEXT NOT NULL, amount INTEGER NOT NULL,
                rule_hash TEXT NOT NULL, evidence TEXT NOT NULL, opened_at TEXT NOT NULL, decided_at TEXT, reason TEXT,
                UNIQUE (policy_id, device_id, start_seq));
            CREATE TABLE IF NOT EXISTS votes (
                claim_id TEXT NOT NULL REFERENCES claims(id), member_id TEXT NOT NULL, approve INTEGER NOT NULL, cast_at TEXT NOT NULL,
                PRIMARY KEY (claim_id, member_id));
            CREATE TABLE IF NOT EXISTS payouts (
                claim_id TEXT PRIMARY KEY REFERENCES claims(id), pool_id TEXT NOT NULL, instruction TEXT NOT NULL,
                jws TEXT NOT NULL, kid TEXT NOT NULL, signed_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ledger (
                pool_id TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
                prev TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (pool_id, seq)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS checkpoints (
                pool_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, jws TEXT NOT NULL,
                PRIMARY KEY (pool_id, seq)) WITHOUT ROWID;
            """);
        var version = Scalar(_writer, null, "SELECT version FROM schema_info");
        if (version is null)
        {
            Execute(_writer, "INSERT INTO schema_info(version) VALUES ($v)", ("$v", SchemaVersion));
        }
        else if (Convert.ToInt32(version, System.Globalization.CultureInfo.InvariantCulture) != SchemaVersion)
        {
            throw new InvalidOperationException($"Database {Path} has schema version {version}; this build reads version {SchemaVersion}");
        }
    }
}
