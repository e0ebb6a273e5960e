using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;


namespace ShareVault.Cli.Tests;

/// <summary>The claims verbs of the real <c>sharevault</c> CLI with <c>--db</c> naming a PostgreSQL database.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class ClaimsCliOnPostgreSqlTests(PoolKeyFixture key)
{
    [Fact]
    public async Task Pool_verbs_work_on_a_postgresql_database_given_by_db()
    {
        var db = PostgresServer.Shared.CreateDatabase();
        async Task<string> Run(params string[] args)
        {
            var result = await CliRunner.RunAsync(key.DataDir, [.. args, "--db", db]);
            Assert.True(result.ExitCode == 0, $"sharevault {string.Join(' ', args)} failed: {result.StdErr}");
            return result.StdOut;
        }

        await Run("pool", "create", "--pool", "pg-pool", "--name", "Riverside", "--key", key.KeyName, "--max-payout", "50000");
        await Run("pool", "join", "--pool", "pg-pool", "--member", "alice");
        Assert.Contains("sha256 ", await Run("pool", "policy", "--pool", "pg-pool", "--member", "alice", "--policy", "pg-alice", "--rule", "temperature<0°C for 120min", "--amount", "1000"));
        await Run("pool", "premium", "--pool", "pg-pool", "--member", "alice", "--amount", "700");

        var list = await Run("pool", "list");
        Assert.Contains("pg-pool\tRiverside\t700 EUR", list);

        // The same database seen from another connection: it is really in PostgreSQL, not a file named like the connection string.
        using var direct = ShareVault.Claims.Storage.ClaimsDatabase.Open(db);
        Assert.Equal(ShareVault.Claims.Storage.SqlDialect.PostgreSql, direct.Dialect);
        Assert.Equal(
            "temperature < 0 Cel for 2h",
            ShareVault.Claims.Storage.ClaimsDatabase.Scalar(direct.Writer, null, "SELECT rule_text FROM policies WHERE id=@id", ("@id", "pg-alice")));
    }

    [Fact]
    public async Task An_unreachable_postgresql_server_is_a_clear_error_that_never_shows_the_password()
    {
        var closedPort = SimulatedDevice.FreePort();
        var result = await CliRunner.RunAsync(key.DataDir, "pool", "list", "--db",
            $"Host=127.0.0.1;Port={closedPort};Database=nowhere;Username=sv;Password=not-for-logs-7731;Timeout=3");
        Assert.NotEqual(0, result.ExitCode);
        Assert.StartsWith("sharevault: ", result.StdErr, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{closedPort}", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("not-for-logs-7731", result.StdErr + result.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.StdErr, StringComparison.Ordinal); // a reason, not a stack trace
    }

    [Fact]
    public async Task A_connection_string_naming_the_server_by_its_Server_alias_is_postgresql_and_never_shows_the_password()
    {
        var closedPort = SimulatedDevice.FreePort();
        var result = await CliRunner.RunAsync(key.DataDir, "pool", "list", "--db",
            $"Server=127.0.0.1;Port={closedPort};Database=nowhere;Username=sv;Password=not-for-logs-7732;Timeout=3");
        Assert.NotEqual(0, result.ExitCode); // not a SQLite file named after the connection string
        Assert.Contains($"127.0.0.1:{closedPort}", result.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("not-for-logs-7732", result.StdErr + result.StdOut, StringComparison.Ordinal);
    }
}
