using System.Net;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Service.Tests.Http;

/// <summary>Issue 17 (3): a 5xx used to answer "see the service log" while nothing was logged.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class HttpApiLoggingTests(PoolKeyFixture key)
{
    [Fact]
    public async Task A_500_is_logged_with_its_exception_and_the_route_but_answers_without_detail()
    {
        var logs = new FakeLogCollector();
        using var logging = LoggerFactory.Create(b => b.AddProvider(new FakeLoggerProvider(logs)));
        var options = IngestOverMqttTests.Options(key);
        await using var host = await ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default, logging);
        await IngestOverMqttTests.SetUpPoolAsync(host.Engine, key.KeyName);

        // A storage failure the claims library has no code for: the members table is gone (renamed
        // behind the service's back), so listing members fails with a SqliteException.
        await using (var other = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = options.DatabasePath, Pooling = false }.ToString()))
        {
            await other.OpenAsync();
            await using var rename = other.CreateCommand();
            rename.CommandText = "ALTER TABLE members RENAME TO members_gone";
            await rename.ExecuteNonQueryAsync();
        }

        using var http = new HttpClient { BaseAddress = host.HttpAddress };
        using var response = await http.GetAsync(new Uri("/pools/pool-1/members?secret=hunter2", UriKind.Relative));
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("members", body, StringComparison.Ordinal);

        var logged = Assert.Single(logs.GetSnapshot(), r => r.Category == "ShareVault.Service.HttpApi" && r.Level == LogLevel.Error);
        Assert.IsType<SqliteException>(logged.Exception);
        Assert.Contains("GET /pools/pool-1/members", logged.Message, StringComparison.Ordinal);
        Assert.Contains("500", logged.Message, StringComparison.Ordinal);

        // The query string may carry member data or keys: never logged.
        Assert.DoesNotContain(logs.GetSnapshot(), r => r.Message.Contains("hunter2", StringComparison.Ordinal));
    }
}
