using System.Data.Common;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DeviceAgent.Keys;
using Microsoft.Data.Sqlite;
using Npgsql;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;
using Xunit.Abstractions;

namespace ShareVault.Service.Tests;

/// <summary>
/// The real <c>sharevault serve</c> killed with SIGKILL by its fault-injection points
/// (<see cref="FaultInjection"/>) while the real agent pipeline (the simulators CLI, its own
/// process, durable outbox on disk) delivers a home flood over MQTT; then restarted on the same data
/// folder and port. Nothing is shared with the test process but files and sockets. Run against
/// each database <c>--db</c> takes: a SQLite file and a PostgreSQL server.
/// </summary>
public abstract partial class ServiceCrashContract(PoolKeyFixture key, ITestOutputHelper log) : IDisposable
{
    private const string Pool = "pool-1";
    private const string DeviceId = "kit-crash";
    private const int SigKilled = 128 + 9;

    // Bounds, not pacing: every wait ends as soon as its condition holds. Generous for a loaded 2-core machine.
    private static readonly TimeSpan ServiceReady = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan FaultFires = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan AgentDelivers = TimeSpan.FromSeconds(180);
    private static readonly TimeSpan PayoutSigned = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ServiceStops = TimeSpan.FromSeconds(30);

    private readonly string _dir = Directory.CreateTempSubdirectory("sv-crash-").FullName;
    private readonly List<ChildProcess> _children = [];
    private readonly Dictionary<ChildProcess, Uri> _http = [];

    /// <summary>What <c>--db</c> gets: a SQLite file or a PostgreSQL connection string.</summary>
    protected abstract string Db { get; }

    protected string Dir => _dir;

    /// <summary>A connection that only reads, opened while no service runs on the database.</summary>
    protected abstract DbConnection OpenReadOnly();

    private string AgentState => Path.Combine(_dir, "agent");

    private string Outbox => Path.Combine(AgentState, "outbox");

    [Fact]
    public async Task A_service_killed_between_storing_and_receipting_loses_nothing_and_pays_nothing_twice()
    {
        var deviceKey = await SetUpPoolAsync();
        var (first, port) = await StartServiceOnFreePortAsync(FaultInjection.KillAfterStoreVariable);
        var agent = StartAgent(deviceKey, port);

        // The first batch commits, then the service dies before publishing a single receipt.
        Assert.True(await first.WaitForExitAsync(FaultFires, () => agent.Output) == SigKilled, "serve was not SIGKILLed\n" + first.Output);
        Assert.Contains("fault injection: SIGKILL after committed ingest batch 1 (", first.StdErr, StringComparison.Ordinal);

        // Nothing runs on the database or answers the agent now, so both are frozen: the agent's outbox
        // still holds every record (not one receipt went out), and the database holds the killed batch.
        var unreceipted = OutboxRecords();
        var kept = StoredEvidence();
        Assert.NotEmpty(kept);
        Assert.All(kept, r => Assert.True(unreceipted.TryGetValue(r.Key, out var sha) && sha == r.Value,
            $"record {r.Key} was stored by the killed batch but has left the agent's outbox: a receipt got out"));
        Assert.Empty(Payouts());

        var second = await StartServiceAsync(port);
        var delivered = await AgentFinishesAsync(agent, second);
        Assert.True(Regex.Count(agent.StdErr, "MQTT connected to ") >= 2, "the agent never reconnected to the restarted service\n" + agent.Output);

        // Every record was sent again: the killed batch's records come back as duplicates, the rest are stored now.
        var metrics = await MetricsAsync(second);
        Assert.Equal(delivered - kept.Count, metrics["sharevault_evidence_stored_total"]);
        Assert.True(metrics["sharevault_evidence_duplicate_total"] >= kept.Count, $"{metrics["sharevault_evidence_duplicate_total"]} duplicate receipts for {kept.Count} records kept by the killed batch");
        Assert.DoesNotContain(metrics.Keys, k => k.StartsWith("sharevault_evidence_rejected_total", StringComparison.Ordinal));

        await WaitForPayoutAsync(second);
        await StopAsync(second);

        // Each sequence number stored exactly once, byte for byte what the agent had signed.
        var stored = StoredEvidence();
        Assert.Equal(delivered, stored.Count);
        Assert.Equal(Enumerable.Range(1, delivered).Select(i => (long)i), stored.Keys);
        Assert.Equal(unreceipted, stored);
        await AssertPaidOnceAsync();
    }

    [Fact]
    public async Task A_service_killed_after_signing_a_payout_and_before_recording_it_pays_exactly_once()
    {
        var deviceKey = await SetUpPoolAsync();
        var (first, port) = await StartServiceOnFreePortAsync(FaultInjection.KillAfterPayoutSignedVariable);
        var agent = StartAgent(deviceKey, port);

        Assert.True(await first.WaitForExitAsync(FaultFires, () => agent.Output) == SigKilled, "serve was not SIGKILLed\n" + first.Output);
        Assert.Contains("fault injection: SIGKILL after signing payout 1 (claim clm-", first.StdErr, StringComparison.Ordinal);

        // The claim and its approval committed with the evidence; the signed payout did not.
        var (claimId, status) = Assert.Single(Claims());
        Assert.Equal("approved", status);
        Assert.Empty(Payouts());
        Assert.DoesNotContain(LedgerEntry.Payout, LedgerKinds());
        Assert.Contains($"(claim {claimId})", first.StdErr, StringComparison.Ordinal);

        // The agent may still be waiting for receipts of records after the claim's: it resends them to the new process.
        var second = await StartServiceAsync(port);
        var delivered = await AgentFinishesAsync(agent, second);
        await WaitForPayoutAsync(second);
        await StopAsync(second);

        Assert.Equal(Enumerable.Range(1, delivered).Select(i => (long)i), StoredEvidence().Keys);
        Assert.Equal(claimId, (await AssertPaidOnceAsync()).ClaimId);
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        foreach (var child in _children)
        {
            child.Kill();
            log.WriteLine(child.Output);
            child.Dispose();
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the temp cleaner.
        }
    }

    /// <summary>The quick start's verbs, run as a user would: pool, member, flood policy, premium, and the agent's device key (inside SoftHSM) enrolled.</summary>
    private async Task<string> SetUpPoolAsync()
    {
        var deviceKey = SoftHsm.Shared.Uri("device-hsm", $"crash-{Guid.NewGuid():N}"[..14]);
        var pem = Path.Combine(_dir, "device.pem");
        using (var created = DeviceKey.Create(deviceKey, allowSoftwareKey: false))
        {
            await File.WriteAllTextAsync(pem, created.PublicPem());
        }

        string[][] verbs =
        [
            ["pool", "create", "--pool", Pool, "--name", "Riverside homes", "--currency", "EUR", "--key", key.KeyName, "--max-payout", "50000"],
            ["pool", "join", "--pool", Pool, "--member", "alice"],
            ["pool", "policy", "--pool", Pool, "--member", "alice", "--policy", "alice-flood", "--rule", "water_leak == 1 for 10m", "--amount", "25000"],
            ["pool", "premium", "--pool", Pool, "--member", "alice", "--amount", "60000"],
            ["device", "enroll", "--pool", Pool, "--member", "alice", "--device", DeviceId, "--device-key", pem],
        ];
        foreach (var verb in verbs)
        {
            var run = await CliRunner.RunAsync(key.DataDir, [.. verb, "--db", Db]);
            Assert.True(run.ExitCode == 0, $"sharevault {string.Join(' ', verb.Take(2))}: {run.StdOut}{run.StdErr}");
        }

        return deviceKey;
    }

    /// <summary>Starts the armed service on a port free a moment ago, trying another if someone else binds it first.</summary>
    private async Task<(ChildProcess Service, int Port)> StartServiceOnFreePortAsync(string faultVariable)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = SimulatedDevice.FreePort();
            try
            {
                var service = await StartServiceAsync(port, faultVariable);
                await service.WaitForLineAsync(l => l.StartsWith("sharevault: fault injection armed: ", StringComparison.Ordinal), ServiceReady, "'fault injection armed' line", stderr: true);
                return (service, port);
            }
            catch (InvalidOperationException e) when (attempt < 3 && e.Message.Contains("Address already in use", StringComparison.Ordinal))
            {
            }
        }
    }

    /// <summary><c>sharevault serve</c> on <paramref name="port"/> (plain MQTT, no TLS, any HTTP port), ready once it prints its HTTP address.</summary>
    private async Task<ChildProcess> StartServiceAsync(int port, string? faultVariable = null)
    {
        var environment = new Dictionary<string, string?>
        {
            ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath,
            [FaultInjection.KillAfterStoreVariable] = null,
            [FaultInjection.KillAfterPayoutSignedVariable] = null,
        };
        if (faultVariable is not null)
        {
            environment[faultVariable] = "1";
        }

        var service = Track(ChildProcess.Start($"serve #{_children.Count(c => c.Name.StartsWith("serve", StringComparison.Ordinal)) + 1}", "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "sharevault.dll"), "serve", "--data-dir", key.DataDir, "--db", Db,
             "--mqtt-port", port.ToString(CultureInfo.InvariantCulture), "--mqtt-tls-port", "0", "--http-port", "0"],
            environment));
        var line = await service.WaitForLineAsync(l => l.TrimStart().StartsWith("HTTP API ", StringComparison.Ordinal), ServiceReady, "HTTP API line (service ready)");
        _http[service] = new Uri(line.Trim()["HTTP API ".Length..]);
        return service;
    }

    /// <summary>The real agent pipeline: the home-flood kit signs an hour of evidence with its SoftHSM key into a durable outbox, then delivers it and waits for receipts.</summary>
    private ChildProcess StartAgent(string deviceKey, int port) =>
        Track(ChildProcess.Start("agent", "dotnet",
            SimulatorProcess.Arguments("run", "--scenario", "home-flood", "--minutes", "60",
             "--device-id", DeviceId, "--key", deviceKey, "--sink", "dir:" + Path.Combine(_dir, "sink"), "--state", AgentState,
             "--broker", $"mqtt://127.0.0.1:{port}", "--receipt-timeout", "600"),
            new Dictionary<string, string?> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath }));

    /// <summary>Waits for the agent to empty its outbox through the restarted service; returns how many records it signed.</summary>
    private async Task<int> AgentFinishesAsync(ChildProcess agent, ChildProcess service)
    {
        var exit = await agent.WaitForExitAsync(AgentDelivers, () => service.Output);
        Assert.True(exit == 0, "the agent did not deliver everything\n" + agent.Output + service.Output);
        var summary = AgentSummary().Match(agent.StdOut);
        Assert.True(summary.Success, "no delivery summary\n" + agent.Output);
        Assert.Equal("0", summary.Groups["left"].Value);

        // Only stored/duplicate receipts release a record; a rejected one would sit in outbox/rejected.
        Assert.Empty(DeviceAgent.Storage.Outbox.Inspect(Outbox));
        Assert.Empty(Directory.GetFiles(Path.Combine(Outbox, "rejected")));
        var signed = int.Parse(summary.Groups["signed"].Value, CultureInfo.InvariantCulture);
        Assert.True(signed >= 61, $"{signed} records for an hour at one a minute");
        return signed;
    }

    private async Task WaitForPayoutAsync(ChildProcess service)
    {
        using var http = new HttpClient { BaseAddress = _http[service], Timeout = TimeSpan.FromSeconds(10) };
        var deadline = DateTime.UtcNow + PayoutSigned;
        while ((await http.GetFromJsonAsync<JsonArray>(new Uri("/payouts", UriKind.Relative)))!.Count == 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                var health = await http.GetStringAsync(new Uri("/health", UriKind.Relative));
                Assert.Fail($"no payout within {PayoutSigned.TotalSeconds:F0} s; /health: {health}\n{service.Output}");
            }

            await Task.Delay(100);
        }
    }

    private async Task<Dictionary<string, long>> MetricsAsync(ChildProcess service)
    {
        using var http = new HttpClient { BaseAddress = _http[service], Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#'))
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => long.Parse(p[1], CultureInfo.InvariantCulture), StringComparer.Ordinal);
    }

    /// <summary>SIGTERM to the restarted (unarmed) service: it shuts down cleanly, leaving the database to the CLI.</summary>
    private static async Task StopAsync(ChildProcess service)
    {
        service.Signal(ChildProcess.SigTerm);
        var exit = await service.WaitForExitAsync(ServiceStops);
        Assert.True(exit == 0, "serve did not stop cleanly on SIGTERM\n" + service.Output);
        Assert.DoesNotContain("fault injection", service.StdErr, StringComparison.Ordinal);
    }

    /// <summary>One claim, paid once, and the ledger export verifies offline (chain, checkpoints, payout JWS, trigger recomputed).</summary>
    private async Task<(string ClaimId, string Jws)> AssertPaidOnceAsync()
    {
        var (claimId, status) = Assert.Single(Claims());
        Assert.Equal("paid", status);
        var payout = Assert.Single(Payouts());
        Assert.Equal(claimId, payout.ClaimId);
        Assert.Single(LedgerKinds(), k => k == LedgerEntry.Payout);

        var export = Path.Combine(_dir, "ledger.json");
        var exported = await CliRunner.RunAsync(key.DataDir, "ledger", "export", "--pool", Pool, "--out", export, "--db", Db);
        Assert.True(exported.ExitCode == 0, exported.StdOut + exported.StdErr);
        var verified = await CliRunner.RunAsync(key.DataDir, "ledger", "verify", "--in", export);
        Assert.True(verified.ExitCode == 0, verified.StdOut + verified.StdErr);
        Assert.StartsWith("valid: ", verified.StdOut, StringComparison.Ordinal);
        var ledger = LedgerVerifier.Verify(await File.ReadAllTextAsync(export));
        Assert.True(ledger.IsValid, ledger.Detail);
        Assert.Equal(1, ledger.Payouts);
        Assert.Equal(1, ledger.Reevaluated);
        return payout;
    }

    /// <summary>The records waiting in the agent's outbox: sequence → SHA-256 of the COSE bytes.</summary>
    private SortedDictionary<long, string> OutboxRecords() =>
        new(DeviceAgent.Storage.Outbox.Inspect(Outbox).ToDictionary(r => r.Entry.Sequence, r => Convert.ToHexStringLower(SHA256.HashData(r.Cose))));

    /// <summary>The stored evidence of the device: sequence → SHA-256 of the COSE bytes.</summary>
    private SortedDictionary<long, string> StoredEvidence() =>
        new(Query("SELECT seq, cose FROM evidence WHERE device_id = @device", r => (r.GetInt64(0), Convert.ToHexStringLower(SHA256.HashData((byte[])r[1]))))
            .ToDictionary(r => r.Item1, r => r.Item2));

    private List<(string Id, string Status)> Claims() => Query("SELECT id, status FROM claims", r => (r.GetString(0), r.GetString(1)));

    private List<(string ClaimId, string Jws)> Payouts() => Query("SELECT claim_id, jws FROM payouts", r => (r.GetString(0), r.GetString(1)));

    private List<string> LedgerKinds() => Query("SELECT kind FROM ledger WHERE pool_id = @pool ORDER BY seq", r => r.GetString(0));

    /// <summary>Reads the service's database directly, while no service runs on it.</summary>
    private List<T> Query<T>(string sql, Func<DbDataReader, T> row)
    {
        using var connection = OpenReadOnly();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in new[] { ("@device", DeviceId), ("@pool", Pool) })
        {
            if (sql.Contains(name, StringComparison.Ordinal))
            {
                var parameter = command.CreateParameter();
                parameter.ParameterName = name;
                parameter.Value = value;
                command.Parameters.Add(parameter);
            }
        }

        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(row(reader));
        }

        return rows;
    }

    private ChildProcess Track(ChildProcess child)
    {
        _children.Add(child);
        return child;
    }

    [GeneratedRegex(@"^(?<signed>\d+) signed record\(s\); (?<receipted>\d+) receipted by the service via \S+; (?<left>\d+) still in the outbox$", RegexOptions.Multiline)]
    private static partial Regex AgentSummary();
}

[Collection(PoolKeyGroup.Name)]
public sealed class ServiceCrashOnSqliteTests(PoolKeyFixture key, ITestOutputHelper log) : ServiceCrashContract(key, log)
{
    protected override string Db => Path.Combine(Dir, "claims.db");

    protected override DbConnection OpenReadOnly()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }
}

[Collection(PoolKeyGroup.Name)]
public sealed class ServiceCrashOnPostgreSqlTests(PoolKeyFixture key, ITestOutputHelper log) : ServiceCrashContract(key, log)
{
    private readonly string _database = PostgresServer.Shared.CreateDatabase("crash");

    protected override string Db => _database;

    protected override DbConnection OpenReadOnly()
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_database) { Pooling = false }.ConnectionString);
        connection.Open();
        using var readOnly = connection.CreateCommand();
        readOnly.CommandText = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY";
        readOnly.ExecuteNonQuery();
        return connection;
    }
}
