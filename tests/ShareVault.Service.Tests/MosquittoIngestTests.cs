using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Service.Tests;

/// <summary>The ingest flow against a real mosquitto (TLS, certificate login with use_identity_as_username, per-device ACL).</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class MosquittoIngestTests(PoolKeyFixture key)
{
    [Fact]
    public async Task A_broker_that_takes_the_connection_but_never_answers_fails_the_start_with_a_reason_naming_it()
    {
        // Takes TCP connections and never says a word, like a hung broker behind a load balancer.
        var port = ShareVault.Hardware.LoopbackPorts.Reserve();
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, port);
        silent.Start();
        var options = IngestOverMqttTests.Options(key, key.NewDatabasePath()) with
        {
            MqttPort = 0,
            MqttTlsPort = 0,
            ExternalBroker = new ExternalBrokerOptions { Url = new Uri($"mqtt://127.0.0.1:{port}"), AnswerTimeout = TimeSpan.FromSeconds(1) },
        };

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<IOException>(() => ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal($"The MQTT broker 127.0.0.1:{port} did not answer CONNECT and SUBSCRIBE within 1 s", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_leak_through_mosquitto_yields_exactly_one_claim_and_one_payout()
    {
        await using var site = await MosquittoSite.StartAsync(key.DataDir);
        await using var device = new SimulatedDevice("pi-mosq-1") { AsksForReceiptLists = true }; // receipt lists through mosquitto: the user property travels with the PUBLISH
        await using var host = await ClaimsHost.StartAsync(site.ServiceOptions(key, key.NewDatabasePath()), key.Signer(), TimeProvider.System, default);
        await IngestOverMqttTests.SetUpPoolAsync(host.Engine, key.KeyName, device);

        await site.ConnectAsync(device);
        var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12);
        foreach (var record in records)
        {
            await device.PublishAsync(record, default);
        }

        var receipts = await device.WaitForReceiptsAsync(records, TimeSpan.FromSeconds(30));
        Assert.All(receipts, r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        var payouts = await IngestOverMqttTests.EventuallyAsync(() => host.Engine.ListPayouts(), p => p.Count > 0, TimeSpan.FromSeconds(30));
        Assert.Single(payouts);
        Assert.Single(host.Engine.ListClaims());
    }

    [Fact]
    public async Task After_mosquitto_restarts_the_service_reconnects_resubscribes_and_ingests_again()
    {
        await using var site = await MosquittoSite.StartAsync(key.DataDir);
        await using var device = new SimulatedDevice("pi-mosq-restart");
        await using var host = await ClaimsHost.StartAsync(site.ServiceOptions(key, key.NewDatabasePath()), key.Signer(), TimeProvider.System, default);
        await IngestOverMqttTests.SetUpPoolAsync(host.Engine, key.KeyName, device);
        await site.ConnectAsync(device);
        var records = device.Quiet(DateTimeOffset.UtcNow.AddMinutes(-30), minutes: 20);
        var before = records.Take(10).ToList();
        foreach (var record in before)
        {
            await device.PublishAsync(record, default);
        }

        Assert.All(await device.WaitForReceiptsAsync(before, TimeSpan.FromSeconds(30)), r => Assert.Equal(ReceiptStatus.Stored, r.Status));

        // The broker restarts without persistence: the service's session and shared subscription are gone.
        await site.RestartAsync();
        Assert.Equal(1, await IngestOverMqttTests.EventuallyAsync(() => host.External!.Reconnects, n => n >= 1, TimeSpan.FromSeconds(60)));
        await site.ConnectAsync(device); // the agent's MQTT delivery reconnects by itself; this test device is told to
        var after = records.Skip(10).ToList();
        foreach (var record in after)
        {
            await device.PublishAsync(record, default);
        }

        Assert.All(await device.WaitForReceiptsAsync(after, TimeSpan.FromSeconds(30)), r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        Assert.Equal(records.Count - 1, host.Engine.ListDevices().Single(d => d.Id == device.Id).MaxSequence); // sequences count from 0
    }

    /// <summary>Beyond one machine (docs/architecture.md, "Where things run"): claim workers split the stream (MQTT 5 shared subscription) over one PostgreSQL database.</summary>
    [Fact]
    public async Task Two_service_instances_on_postgresql_split_a_shared_subscription_and_decide_as_one()
    {
        await using var site = await MosquittoSite.StartAsync(key.DataDir);
        var database = ShareVault.TestSupport.PostgresServer.Shared.CreateDatabase();
        await using var flooded = new SimulatedDevice("pi-pg-flood");
        await using var quiet = new SimulatedDevice("pi-pg-quiet");
        await using var first = await ClaimsHost.StartAsync(site.ServiceOptions(key, database), key.Signer(), TimeProvider.System, default);
        await IngestOverMqttTests.SetUpPoolAsync(first.Engine, key.KeyName, flooded, quiet);
        await using var second = await ClaimsHost.StartAsync(site.ServiceOptions(key, database), key.Signer(), TimeProvider.System, default);

        await site.ConnectAsync(flooded);
        await site.ConnectAsync(quiet);
        var wet = flooded.Leak(DateTimeOffset.UtcNow.AddMinutes(-40), wetMinutes: 14);
        var dry = quiet.Quiet(DateTimeOffset.UtcNow.AddMinutes(-40), minutes: 30);
        for (var i = 0; i < Math.Max(wet.Count, dry.Count); i++)
        {
            if (i < wet.Count)
            {
                await flooded.PublishAsync(wet[i], default);
            }

            if (i < dry.Count)
            {
                await quiet.PublishAsync(dry[i], default);
            }
        }

        Assert.All(await flooded.WaitForReceiptsAsync(wet, TimeSpan.FromSeconds(30)), r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        Assert.All(await quiet.WaitForReceiptsAsync(dry, TimeSpan.FromSeconds(30)), r => Assert.Equal(ReceiptStatus.Stored, r.Status));

        // Both instances took part, and together they stored every record once.
        Assert.True(first.Ingest.Metrics.StoredCount > 0, "the first instance stored nothing: the stream was not split");
        Assert.True(second.Ingest.Metrics.StoredCount > 0, "the second instance stored nothing: the stream was not split");
        Assert.Equal(wet.Count + dry.Count, first.Ingest.Metrics.StoredCount + second.Ingest.Metrics.StoredCount);
        Assert.Equal(wet.Count, second.Engine.Evidence(flooded.Id).Count);
        Assert.Equal(dry.Count, first.Engine.Evidence(quiet.Id).Count);

        var payouts = await IngestOverMqttTests.EventuallyAsync(() => first.Engine.ListPayouts(), p => p.Count > 0, TimeSpan.FromSeconds(30));
        await first.HousekeepOnceAsync(default);
        await second.HousekeepOnceAsync(default);
        var claim = Assert.Single(second.Engine.ListClaims());
        Assert.Equal(flooded.Id, claim.DeviceId);
        Assert.Single(payouts);
        Assert.Single(second.Engine.ListPayouts());
        var entries = first.Engine.LedgerEntries("pool-1");
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (long)i), entries.Select(e => e.Sequence));
        await first.Engine.CheckpointAsync("pool-1", force: true, default); // an export ends at a checkpoint (null when the head is signed already)
        var verification = LedgerVerifier.Verify(LedgerExport.ToText(first.Engine.ExportLedger("pool-1")));
        Assert.True(verification.IsValid, verification.Detail);
        Assert.Equal(1, verification.Reevaluated);
    }
}
