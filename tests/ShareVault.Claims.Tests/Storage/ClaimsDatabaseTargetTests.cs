using Npgsql;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Tests.Storage;

/// <summary>What <c>--db</c> accepts, without a server: which texts are PostgreSQL, and how a libpq URI becomes Npgsql keywords.</summary>
public sealed class ClaimsDatabaseTargetTests
{
    [Theory]
    [InlineData("Host=db;Database=claims", true)]
    [InlineData("Server=db;Database=claims", true)]
    [InlineData("postgresql://db/claims", true)]
    [InlineData("postgres://db/claims", true)]
    [InlineData("./data/claims.db", false)]
    [InlineData("/var/lib/sharevault/claims.db", false)]
    public void Only_connection_strings_and_uris_are_postgresql(string target, bool postgres) =>
        Assert.Equal(postgres, ClaimsDatabase.IsPostgreSql(target));

    [Fact]
    public void A_libpq_uri_keeps_its_user_password_port_database_and_options()
    {
        var builder = new NpgsqlConnectionStringBuilder(ClaimsDatabase.PostgresUriToKeywords(
            "postgresql://claims%20user:s%3Acret@db.example:6543/claims?sslmode=require&application_name=sharevault"));
        Assert.Equal("db.example", builder.Host);
        Assert.Equal(6543, builder.Port);
        Assert.Equal("claims", builder.Database);
        Assert.Equal("claims user", builder.Username);
        Assert.Equal("s:cret", builder.Password);
        Assert.Equal(SslMode.Require, builder.SslMode);
        Assert.Equal("sharevault", builder.ApplicationName);
    }

    [Fact]
    public void An_unknown_uri_option_is_refused_rather_than_dropped() =>
        Assert.Throws<ArgumentException>(() => ClaimsDatabase.PostgresUriToKeywords("postgresql://db/claims?no_such_option=1"));
}
