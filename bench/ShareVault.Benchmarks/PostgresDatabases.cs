using System.Globalization;
using Npgsql;
using ShareVault.Claims.Storage;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Fresh, empty PostgreSQL databases for benchmark rounds, made with <c>CREATE DATABASE</c> through a
/// maintenance connection and dropped after the round. The server is the one named by
/// <c>--postgres=CONNSTRING</c> (its user needs CREATEDB), or else a throwaway cluster started with
/// <see cref="PostgresServer"/> (initdb in a temporary folder, free loopback port) and stopped on dispose.
/// </summary>
internal sealed class PostgresDatabases : IDisposable
{
    private readonly string _maintenance;
    private readonly PostgresServer? _server;
    private int _count;

    private PostgresDatabases(string maintenance, PostgresServer? server, string description)
    {
        _maintenance = maintenance;
        _server = server;
        Description = description;
    }

    /// <summary>Where the databases live (server and version; never a password).</summary>
    public string Description { get; }

    /// <summary><c>--postgres</c> or <c>--postgres=CONNSTRING</c>; null when neither is given.</summary>
    public static PostgresDatabases? FromArguments(string[] args)
    {
        var flag = args.FirstOrDefault(a => a == "--postgres" || a.StartsWith("--postgres=", StringComparison.Ordinal));
        if (flag is null)
        {
            return null;
        }

        if (flag.Length > "--postgres=".Length)
        {
            var builder = new NpgsqlConnectionStringBuilder(ClaimsDatabase.PostgresUriToKeywords(flag["--postgres=".Length..]));
            builder.Database ??= "postgres";
            return Describe(builder.ConnectionString, null, $"given server {builder.Host}:{builder.Port}");
        }

        var server = PostgresServer.Shared;
        return Describe(server.ConnectionString("postgres"), server, $"throwaway server (initdb in {server.Root}, 127.0.0.1:{server.Port})");
    }

    /// <summary>Creates an empty database; disposing the result drops it.</summary>
    public FreshDatabase Create()
    {
        var name = string.Create(CultureInfo.InvariantCulture, $"sv_bench_{Environment.ProcessId}_{Interlocked.Increment(ref _count)}");
        Execute($"CREATE DATABASE {name}");
        var builder = new NpgsqlConnectionStringBuilder(_maintenance) { Database = name };
        return new FreshDatabase(this, name, builder.ConnectionString);
    }

    public void Dispose() => _server?.Dispose();

    private static PostgresDatabases Describe(string maintenance, PostgresServer? server, string where)
    {
        using var connection = new NpgsqlConnection(maintenance);
        connection.Open();
        using var command = new NpgsqlCommand("SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('fsync')", connection);
        using var reader = command.ExecuteReader();
        reader.Read();
        return new PostgresDatabases(maintenance, server, $"{where}, version {reader.GetString(0)}, synchronous_commit={reader.GetString(1)}, fsync={reader.GetString(2)}");
    }

    private void Execute(string sql)
    {
        using var connection = new NpgsqlConnection(_maintenance);
        connection.Open();
#pragma warning disable CA2100 // the only interpolated part is a database name made above from digits
        using var command = new NpgsqlCommand(sql, connection);
#pragma warning restore CA2100
        command.ExecuteNonQuery();
    }

    /// <summary>One round's database: its connection string, dropped on dispose.</summary>
    internal sealed class FreshDatabase(PostgresDatabases owner, string name, string connectionString) : IDisposable
    {
        public string ConnectionString { get; } = connectionString;

        // WITH (FORCE) (PostgreSQL 13+) ends the round's pooled connections that may still be open.
        public void Dispose() => owner.Execute($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    }
}
