using System.Globalization;
using System.Security.Cryptography;
using Npgsql;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.TestSupport;
using Xunit.Abstractions;

namespace ShareVault.Service.Tests;

/// <summary>One mosquitto (TLS, certificate login, per-device ACL) for the whole test class.</summary>
public sealed class MosquittoFixture : IAsyncLifetime
{
    private readonly string _parent = Directory.CreateTempSubdirectory("sv-mosquitto-").FullName;

    internal MosquittoSite Site { get; private set; } = null!;

    public async Task InitializeAsync() => Site = await MosquittoSite.StartAsync(_parent);

    public async Task DisposeAsync()
    {
        await Site.DisposeAsync();
        try
        {
            Directory.Delete(_parent, recursive: true);
        }
        catch (IOException)
        {
            // Left for the temp cleaner.
        }
    }
}

/// <summary>
/// Scale-out as deployed (docs/architecture.md, "Where things run"): three real
/// <c>sharevault serve --broker mqtts://… --db postgresql</c> processes behind one mosquitto share the
/// evidence stream through the MQTT 5 shared subscription <c>$share/sharevault/…</c> (MQTT 5 §4.8.2)
/// over one PostgreSQL database; one of them is SIGKILLed in the middle of the stream. Devices behave
/// as the agent does: a record without a receipt is sent again. Every record ends up stored once,
/// one claim is opened and one payout signed.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class ScaleOutTests(PoolKeyFixture key, MosquittoFixture broker, ITestOutputHelper log) : IClassFixture<MosquittoFixture>, IDisposable
{
    private const int Instances = 3;
    private const int QuietDevices = 5;
    private const int QuietMinutes = 40;

    // Bounds, not pacing: every wait ends as soon as its condition holds. Generous for a loaded 2-core machine.
    private static readonly TimeSpan ServiceReady = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Delivered = TimeSpan.FromSeconds(180);
    private static readonly TimeSpan ResendAfter = TimeSpan.FromSeconds(3);

    private readonly List<ChildProcess> _services = [];
    private readonly Dictionary<ChildProcess, Uri> _http = [];

    [Fact]
    public async Task Three_serve_processes_share_the_stream_and_one_SIGKILLed_midway_loses_nothing_and_pays_nothing_twice()
    {
        var site = broker.Site;
        var database = PostgresServer.Shared.CreateDatabase("scale");
        await using var flooded = new SimulatedDevice("so-flood-" + Guid.NewGuid().ToString("N")[..6]) { AsksForReceiptLists = true };
        var quiet = Enumerable.Range(0, QuietDevices).Select(i => new SimulatedDevice($"so-quiet-{i}-" + Guid.NewGuid().ToString("N")[..6])).ToList();
        try
        {
            using (var db = ClaimsDatabase.Open(database))
            using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
            {
                await IngestOverMqttTests.SetUpPoolAsync(engine, key.KeyName, [flooded, .. quiet]);
            }

            await Task.WhenAll(Enumerable.Range(0, Instances).Select(_ => StartServiceAsync(site, database)));

            List<SimulatedDevice> devices = [flooded, .. quiet];
            foreach (var device in devices)
            {
                await site.ConnectAsync(device);
            }

            var start = DateTimeOffset.UtcNow.AddMinutes(-QuietMinutes - 5);
            var records = new Dictionary<SimulatedDevice, List<byte[]>> { [flooded] = flooded.Leak(start, wetMinutes: 14) };
            foreach (var device in quiet)
            {
                records[device] = device.Quiet(start, QuietMinutes);
            }

            // The stream as devices send it: interleaved, each device in its own sequence order.
            var stream = Enumerable.Range(0, records.Values.Max(r => r.Count))
                .SelectMany(i => devices.Where(d => i < records[d].Count).Select(d => (Device: d, Cose: records[d][i]))).ToList();
            var half = stream.Count / 2;
            foreach (var (device, cose) in stream.Take(half))
            {
                await device.PublishAsync(cose, default);
            }

            // Every instance has taken part; then one dies in the middle of the stream, with whatever it
            // had received, committed or not, and receipted or not.
            var victim = _services[1];
            await EventuallyAsync(async () => (await Task.WhenAll(_services.Select(StoredAsync))).All(n => n > 0), Delivered, "every instance storing part of the stream");
            victim.Kill();
            log.WriteLine($"SIGKILLed {victim.Name} after {half} of {stream.Count} records were published");

            foreach (var (device, cose) in stream.Skip(half))
            {
                await device.PublishAsync(cose, default);
            }

            // As the agent does (docs/device-agent.md): what has no receipt after a while is sent again;
            // the broker hands it to a live instance, and what the dead one had committed comes back as a duplicate.
            var deadline = DateTime.UtcNow + Delivered;
            var resent = 0;
            while (stream.Any(s => !s.Device.Receipts.ContainsKey(Hash(s.Cose))))
            {
                Assert.True(DateTime.UtcNow < deadline, $"{stream.Count(s => !s.Device.Receipts.ContainsKey(Hash(s.Cose)))} of {stream.Count} records never receipted\n{Outputs()}");
                await Task.Delay(ResendAfter);
                foreach (var (device, cose) in stream.Where(s => !s.Device.Receipts.ContainsKey(Hash(s.Cose))).ToList())
                {
                    await device.PublishAsync(cose, default);
                    resent++;
                }
            }

            log.WriteLine($"{resent} records sent again after the kill");
            Assert.All(stream, s => Assert.Contains(s.Device.Receipts[Hash(s.Cose)].Status, new[] { ReceiptStatus.Stored, ReceiptStatus.Duplicate }));

            // Stored once each, byte for byte what the devices signed.
            var stored = Query(database, "SELECT device_id, seq, cose FROM evidence", r => (r.GetString(0), r.GetInt64(1), Convert.ToHexStringLower(SHA256.HashData((byte[])r[2]))));
            Assert.Equal(stream.Count, stored.Count);
            Assert.Equal(stream.Select(s => Hash(s.Cose)).Order(StringComparer.Ordinal), stored.Select(s => s.Item3).Order(StringComparer.Ordinal));
            Assert.Equal(stream.Count, stored.Select(s => (s.Item1, s.Item2)).Distinct().Count());

            // One claim, one payout, one payout entry in the ledger, whichever instance decided it.
            await EventuallyAsync(() => Task.FromResult(Query(database, "SELECT claim_id FROM payouts", r => r.GetString(0)).Count > 0), Delivered, "a payout");
            var claim = Assert.Single(Query(database, "SELECT id, device_id FROM claims", r => (Id: r.GetString(0), Device: r.GetString(1))));
            Assert.Equal(flooded.Id, claim.Device);
            Assert.Equal(claim.Id, Assert.Single(Query(database, "SELECT claim_id FROM payouts", r => r.GetString(0))));
            Assert.Single(Query(database, "SELECT kind FROM ledger WHERE kind = @kind", r => r.GetString(0), ("@kind", LedgerEntry.Payout)));

            // The survivors are still serving.
            foreach (var survivor in _services.Where(s => s != victim))
            {
                Assert.False(survivor.HasExited, $"{survivor.Name} exited\n{survivor.Output}");
                Assert.True(await StoredAsync(survivor) > 0);
            }
        }
        finally
        {
            foreach (var device in quiet)
            {
                await device.DisposeAsync();
            }
        }
    }

    public void Dispose()
    {
        foreach (var service in _services)
        {
            service.Kill();
            log.WriteLine(service.Output);
            service.Dispose();
        }
    }

    /// <summary><c>sharevault serve</c> subscribed to the shared mosquitto as the service user; ready once it prints its HTTP address.</summary>
    private async Task StartServiceAsync(MosquittoSite site, string database)
    {
        ChildProcess service;
        lock (_services)
        {
            service = ChildProcess.Start($"serve #{_services.Count + 1}", "dotnet",
                [Path.Combine(AppContext.BaseDirectory, "sharevault.dll"), "serve", "--data-dir", key.DataDir, "--db", database,
                 "--broker", $"mqtts://localhost:{site.Port}", "--broker-ca", Path.Combine(site.Dir, "ca.crt"),
                 "--broker-cert", Path.Combine(site.Dir, "service.crt"), "--broker-key", Path.Combine(site.Dir, "service.key"),
                 "--http-port", ShareVault.Hardware.LoopbackPorts.Reserve().ToString(CultureInfo.InvariantCulture)],
                new Dictionary<string, string?> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });
            _services.Add(service);
        }

        var line = await service.WaitForLineAsync(l => l.TrimStart().StartsWith("HTTP API ", StringComparison.Ordinal), ServiceReady, "HTTP API line (service ready)");
        Assert.Contains($"subscribed to mqtts://localhost:{site.Port}", service.StdOut, StringComparison.Ordinal);
        lock (_services)
        {
            _http[service] = new Uri(line.Trim()["HTTP API ".Length..]);
        }
    }

    /// <summary>Records this instance stored (its Prometheus counter), or -1 once it is gone.</summary>
    private async Task<long> StoredAsync(ChildProcess service)
    {
        if (service.HasExited)
        {
            return -1;
        }

        using var http = new HttpClient { BaseAddress = _http[service], Timeout = TimeSpan.FromSeconds(10) };
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith("sharevault_evidence_stored_total ", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
    }

    private string Outputs() => string.Join('\n', _services.Select(s => s.Output));

    private async Task EventuallyAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"no {what} within {timeout.TotalSeconds:F0} s\n{Outputs()}");
            await Task.Delay(100);
        }
    }

    private static string Hash(byte[] cose) => Convert.ToHexStringLower(EvidenceRecord.Hash(cose));

    private static List<T> Query<T>(string database, string sql, Func<System.Data.Common.DbDataReader, T> row, params (string Name, object Value)[] parameters)
    {
        using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(database) { Pooling = false }.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(row(reader));
        }

        return rows;
    }
}
