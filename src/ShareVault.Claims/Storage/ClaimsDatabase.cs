using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ShareVault.Claims.Storage;

/// <summary>Which SQL engine holds the claims database.</summary>
public enum SqlDialect
{
    /// <summary>One SQLite file (the embedded default): one writer at a time, WAL readers beside it.</summary>
    Sqlite,

    /// <summary>A PostgreSQL database, shared by several service instances.</summary>
    PostgreSql,
}

/// <summary>
/// The claims service's database: pools, members, policies, devices, evaluator state, evidence,
/// rejections, chain breaks, claims, payouts, the hash-chained ledger and the HTTP API's access
/// state (sessions, invitations, passkey counters: <see cref="Pools.MemberAccess"/>), in SQLite (default) or
/// PostgreSQL. Statements are written once in the SQL both engines accept (named <c>@</c>
/// parameters, <c>INSERT … ON CONFLICT DO NOTHING</c>); only the schema differs by dialect.
/// </summary>
/// <remarks>
/// <para>Durability. SQLite runs in WAL mode with <c>synchronous=FULL</c>: a receipt tells the device
/// agent it may delete the record from its outbox, so a commit must survive a power cut before the
/// receipt goes out. With <c>NORMAL</c> a WAL commit is not fsynced and the last transactions can roll
/// back after power loss (sqlite.org/pragma.html#pragma_synchronous). PostgreSQL's defaults
/// (<c>fsync=on</c>, <c>synchronous_commit=on</c>) give the same guarantee; the service refuses to
/// start when the server runs with <c>synchronous_commit=off</c>, which would void it. Batching many
/// records per transaction amortises the sync.</para>
/// <para>Writers. Every write transaction of every process is serialised: SQLite by its own write
/// lock (<c>BEGIN IMMEDIATE</c>), PostgreSQL by a transaction-scoped advisory lock taken first thing
/// in the transaction, so that ledger sequence numbers and per-device evaluation, which read then
/// write, stay consistent when several service instances split one evidence stream.</para>
/// </remarks>
public sealed class ClaimsDatabase : IDisposable
{
    public const int SchemaVersion = 2;

    /// <summary>Key of the PostgreSQL advisory lock that serialises writers ("SVCLAIMS" in ASCII).</summary>
    private const long WriterLockKey = 0x5356434C41494D53;

    private readonly NpgsqlDataSource? _postgres;
    private readonly DbConnection _writer;

    private ClaimsDatabase(SqlDialect dialect, string connectionString, string displayName, NpgsqlDataSource? postgres)
    {
        Dialect = dialect;
        ConnectionString = connectionString;
        DisplayName = displayName;
        _postgres = postgres;
        _writer = OpenConnection();
        if (dialect == SqlDialect.Sqlite)
        {
            Execute(_writer, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        }
        else
        {
            RequireDurableCommits();
        }

        CreateSchema();
    }

    /// <summary>Opens (creating when new) a SQLite file.</summary>
    public ClaimsDatabase(string path)
        : this(SqlDialect.Sqlite, SqliteConnectionString(path, out var full), full, null)
    {
    }

    /// <summary>
    /// Opens the database named by <paramref name="target"/>: a PostgreSQL connection string
    /// (<c>Host=…;Database=…</c> or a <c>postgresql://</c> URI) or else a SQLite file path.
    /// </summary>
    public static ClaimsDatabase Open(string target)
    {
        ArgumentException.ThrowIfNullOrEmpty(target);
        if (!IsPostgreSql(target))
        {
            return new ClaimsDatabase(target);
        }

        var builder = new NpgsqlConnectionStringBuilder(PostgresUriToKeywords(target));
        var display = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}"; // never the password
        var dataSource = new NpgsqlDataSourceBuilder(builder.ConnectionString).Build();
        try
        {
            return new ClaimsDatabase(SqlDialect.PostgreSql, builder.ConnectionString, display, dataSource);
        }
        catch
        {
            dataSource.Dispose();
            throw;
        }
    }

    /// <summary>True when the text is a PostgreSQL connection string rather than a file path.</summary>
    public static bool IsPostgreSql(string target) =>
        target.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
        || target.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
        || target.Contains("Host=", StringComparison.OrdinalIgnoreCase)
        || target.Contains("Server=", StringComparison.OrdinalIgnoreCase); // Npgsql's alias of Host: taken for a file path, the password would become a file name and DisplayName

    public SqlDialect Dialect { get; }

    /// <summary>The SQLite file, or the PostgreSQL server and database (without credentials).</summary>
    public string DisplayName { get; }

    private string ConnectionString { get; }

    /// <summary>The single writer connection; callers serialise access (see <see cref="ShareVault.Claims.ClaimsEngine"/>).</summary>
    public DbConnection Writer => _writer;

    /// <summary>
    /// Starts a write transaction on <see cref="Writer"/>, holding the cross-process writer lock
    /// until it commits or rolls back.
    /// </summary>
    public DbTransaction BeginWrite()
    {
        if (Dialect == SqlDialect.Sqlite)
        {
            return ((SqliteConnection)_writer).BeginTransaction(deferred: false); // BEGIN IMMEDIATE
        }

        // A server restart, failover or terminated backend breaks the long-lived writer connection
        // (Npgsql then reports it Closed); without reopening it no write would ever succeed again.
        // The first statement after a silent break fails instead; nothing ran in that transaction
        // yet, so it is safe to reconnect and start it once more.
        for (var attempt = 0; ; attempt++)
        {
            if (_writer.State != ConnectionState.Open)
            {
                _writer.Close();
                _writer.Open();
            }

            var tx = _writer.BeginTransaction(IsolationLevel.ReadCommitted);
            try
            {
                using var command = Command(_writer, tx, "SELECT pg_advisory_xact_lock(@k)", ("@k", WriterLockKey));
                command.ExecuteNonQuery();
                return tx;
            }
            catch (DbException) when (attempt == 0 && _writer.State != ConnectionState.Open)
            {
                tx.Dispose();
            }
            catch
            {
                tx.Dispose();
                throw;
            }
        }
    }

    /// <summary>A new read connection (caller disposes).</summary>
    public DbConnection OpenReader()
    {
        var connection = OpenConnection();
        if (Dialect == SqlDialect.Sqlite)
        {
            Execute(connection, "PRAGMA busy_timeout=30000;");
        }

        return connection;
    }

    public static int Execute(DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, null, sql, parameters);
        return command.ExecuteNonQuery();
    }

    public static DbCommand Command(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var command = connection.CreateCommand();
#pragma warning disable CA2100 // SQL text is constant; values always go through parameters.
        command.CommandText = sql;
#pragma warning restore CA2100
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }

    public static object? Scalar(DbConnection connection, DbTransaction? transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(connection, transaction, sql, parameters);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    /// <summary>
    /// A WHERE clause with one equality per filter that has a value (<c>column=@column</c>), and its
    /// parameters; filters without a value are left out (PostgreSQL cannot type <c>@p IS NULL</c>).
    /// </summary>
    public static (string Sql, (string Name, object? Value)[] Parameters) Where(params (string Column, object? Value)[] filters)
    {
        var present = filters.Where(f => f.Value is not null).ToArray();
        return present.Length == 0
            ? (string.Empty, [])
            : (" WHERE " + string.Join(" AND ", present.Select(f => $"{f.Column}=@{f.Column}")), [.. present.Select(f => ("@" + f.Column, f.Value))]);
    }

    public static long ToInt64(object? value) => Convert.ToInt64(value, CultureInfo.InvariantCulture);

    public void Dispose()
    {
        _writer.Dispose();
        if (_postgres is not null)
        {
            _postgres.Dispose();
        }
        else
        {
            SqliteConnection.ClearPool(new SqliteConnection(ConnectionString));
        }
    }

    private static string SqliteConnectionString(string path, out string fullPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        fullPath = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(fullPath)!);
        return new SqliteConnectionStringBuilder { DataSource = fullPath, Pooling = true, DefaultTimeout = 30 }.ToString();
    }

    /// <summary>Npgsql takes keyword connection strings; accept the libpq URI form too (postgresql://user@host:port/db).</summary>
    internal static string PostgresUriToKeywords(string target)
    {
        if (!target.Contains("://", StringComparison.Ordinal))
        {
            return target;
        }

        var uri = new Uri(target);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        // libpq URI parameters (?sslmode=require&application_name=…): Npgsql knows most by the same
        // names or spaces instead of underscores; an unknown one is an error, not silently dropped.
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(parts[0]).Replace('_', ' ');
            builder[name] = parts.Length > 1 ? Uri.UnescapeDataString(parts[1]) : string.Empty;
        }

        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length > 1)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        return builder.ConnectionString;
    }

    private DbConnection OpenConnection()
    {
        DbConnection connection = _postgres is not null ? _postgres.CreateConnection() : new SqliteConnection(ConnectionString);
        try
        {
            connection.Open();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private void RequireDurableCommits()
    {
        var setting = (string?)Scalar(_writer, null, "SELECT current_setting('synchronous_commit')");
        if (setting is "off")
        {
            throw new InvalidOperationException($"{DisplayName} runs with synchronous_commit=off: a commit could be lost after its receipt went out. Set it to on (the default).");
        }
    }

    private void CreateSchema()
    {
        var sqlite = Dialect == SqlDialect.Sqlite;
        var blob = sqlite ? "BLOB" : "BYTEA";
        var serial = sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
        var noRowId = sqlite ? " WITHOUT ROWID" : string.Empty;
        using var tx = BeginWrite();
        Execute(tx, $"""
            CREATE TABLE IF NOT EXISTS schema_info (version BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS pools (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, currency TEXT NOT NULL, key_name TEXT NOT NULL,
                max_payout BIGINT NOT NULL, created_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS members (
                pool_id TEXT NOT NULL REFERENCES pools(id), id TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL,
                PRIMARY KEY (pool_id, id));
            CREATE TABLE IF NOT EXISTS policies (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL,
                rule_text TEXT NOT NULL, rule_hash TEXT NOT NULL, payout_amount BIGINT NOT NULL,
                votes_required BIGINT NOT NULL, context TEXT NOT NULL, created_at TEXT NOT NULL,
                FOREIGN KEY (pool_id, member_id) REFERENCES members(pool_id, id));
            CREATE TABLE IF NOT EXISTS premiums (
                id {serial}, pool_id TEXT NOT NULL, member_id TEXT NOT NULL,
                amount BIGINT NOT NULL, paid_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS devices (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL, public_key {blob} NOT NULL,
                enrolled_at TEXT NOT NULL, evaluated_seq BIGINT NOT NULL DEFAULT -1, max_seq BIGINT NOT NULL DEFAULT -1,
                FOREIGN KEY (pool_id, member_id) REFERENCES members(pool_id, id));
            CREATE TABLE IF NOT EXISTS evidence (
                device_id TEXT NOT NULL REFERENCES devices(id), seq BIGINT NOT NULL, time TEXT NOT NULL,
                received_at TEXT NOT NULL, hash {blob} NOT NULL, cose {blob} NOT NULL, readings TEXT NOT NULL,
                PRIMARY KEY (device_id, seq)){noRowId};
            CREATE TABLE IF NOT EXISTS gaps (
                device_id TEXT NOT NULL, from_seq BIGINT NOT NULL, to_seq BIGINT NOT NULL, detected_at TEXT NOT NULL,
                skipped_at TEXT, PRIMARY KEY (device_id, from_seq));
            CREATE TABLE IF NOT EXISTS rejections (
                id {serial}, received_at TEXT NOT NULL, device_id TEXT, topic TEXT NOT NULL,
                seq BIGINT, reason TEXT NOT NULL, detail TEXT NOT NULL, size BIGINT NOT NULL);
            CREATE INDEX IF NOT EXISTS rejections_reason ON rejections(reason);
            CREATE TABLE IF NOT EXISTS claims (
                id TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL, policy_id TEXT NOT NULL REFERENCES policies(id),
                device_id TEXT NOT NULL, start_seq BIGINT NOT NULL, status TEXT NOT NULL, amount BIGINT NOT NULL,
                rule_hash TEXT NOT NULL, evidence TEXT NOT NULL, opened_at TEXT NOT NULL, decided_at TEXT, reason TEXT,
                UNIQUE (policy_id, device_id, start_seq));
            CREATE TABLE IF NOT EXISTS votes (
                claim_id TEXT NOT NULL REFERENCES claims(id), member_id TEXT NOT NULL, approve BIGINT NOT NULL, cast_at TEXT NOT NULL,
                PRIMARY KEY (claim_id, member_id));
            CREATE TABLE IF NOT EXISTS payouts (
                claim_id TEXT PRIMARY KEY REFERENCES claims(id), pool_id TEXT NOT NULL, instruction TEXT NOT NULL,
                jws TEXT NOT NULL, kid TEXT NOT NULL, signed_at TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ledger (
                pool_id TEXT NOT NULL, seq BIGINT NOT NULL, time TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
                prev TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (pool_id, seq)){noRowId};
            CREATE TABLE IF NOT EXISTS checkpoints (
                pool_id TEXT NOT NULL, seq BIGINT NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, jws TEXT NOT NULL,
                PRIMARY KEY (pool_id, seq)){noRowId};
            CREATE TABLE IF NOT EXISTS access_sessions (
                token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, pool_id TEXT, member_id TEXT, expires_at BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS access_invitations (
                code_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, member_id TEXT NOT NULL, name TEXT NOT NULL, expires_at BIGINT NOT NULL);
            CREATE TABLE IF NOT EXISTS access_passkey_counters (
                pool_id TEXT NOT NULL, member_id TEXT NOT NULL, credential_id TEXT NOT NULL, sign_count BIGINT NOT NULL,
                PRIMARY KEY (pool_id, member_id, credential_id));
            """);
        var version = Scalar(_writer, tx, "SELECT version FROM schema_info");
        if (version is null)
        {
            MigrateToVersion2(tx, blob);
            Execute(tx, "INSERT INTO schema_info(version) VALUES (@v)", ("@v", SchemaVersion));
        }
        else if (ToInt64(version) == 1)
        {
            MigrateToVersion2(tx, blob);
            Execute(tx, "UPDATE schema_info SET version=@v", ("@v", SchemaVersion));
        }
        else if (ToInt64(version) != SchemaVersion)
        {
            throw new InvalidOperationException($"Database {DisplayName} has schema version {version}; this build reads version {SchemaVersion}");
        }

        tx.Commit();
    }

    /// <summary>
    /// Version 2: evaluator state kept in the database (so any instance can continue a device's
    /// evaluation, and a restart does not replay all evidence), a per-device state version that tells
    /// an instance its cached state is stale, the previous-record hash of each record, and chain breaks.
    /// Version 1 devices have no evaluator rows; the engine rebuilds those once by replay.
    /// </summary>
    private static void MigrateToVersion2(DbTransaction tx, string blob)
    {
        Execute(tx, "ALTER TABLE devices ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0");
        Execute(tx, $"ALTER TABLE devices ADD COLUMN last_hash {blob}");
        Execute(tx, $"ALTER TABLE evidence ADD COLUMN prev {blob}");
        Execute(tx, $"""
            CREATE TABLE IF NOT EXISTS evaluators (
                device_id TEXT NOT NULL REFERENCES devices(id), policy_id TEXT NOT NULL REFERENCES policies(id),
                from_seq BIGINT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (device_id, policy_id));
            CREATE TABLE IF NOT EXISTS chain_breaks (
                device_id TEXT NOT NULL, seq BIGINT NOT NULL, expected {blob}, found {blob}, detected_at TEXT NOT NULL,
                PRIMARY KEY (device_id, seq));
            """);
    }

    private static void Execute(DbTransaction tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(tx.Connection!, tx, sql, parameters);
        command.ExecuteNonQuery();
    }
}
