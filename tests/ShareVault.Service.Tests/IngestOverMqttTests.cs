using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using ShareVault.Claims;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Service.Tests;

[Collection(PoolKeyGroup.Name)]
public sealed class IngestOverMqttTests(PoolKeyFixture key)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    internal static ServiceOptions Options(PoolKeyFixture key, string? db = null, int? mqttPort = null) => new()
    {
        DataDir = key.DataDir,
        DatabasePath = db ?? key.NewDatabasePath(),
        MqttPort = mqttPort ?? SimulatedDevice.FreePort(),
        MqttTlsPort = 0,
        HttpPort = 0,
        HousekeepingInterval = TimeSpan.FromMilliseconds(200),
    };

    internal static async Task SetUpPoolAsync(ClaimsEngine engine, string keyName, params SimulatedDevice[] devices)
    {
        await engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", keyName, 50_000, default);
        await engine.AddMemberAsync("pool-1", "alice", "Alice", default);
        await engine.AddMemberAsync("pool-1", "bob", "Bob", default);
        await engine.IssuePolicyAsync("pool-1", "alice", "pol-alice-flood", "water_leak == 1 for 10m", 25_000, 0, null, default);
        await engine.IssuePolicyAsync("pool-1", "bob", "pol-bob-flood", "water_leak == 1 for 10m", 25_000, 0, null, default);
        await engine.RecordPremiumAsync("pool-1", "alice", 60_000, default);
        await engine.RecordPremiumAsync("pool-1", "bob", 60_000, default);
        for (var i = 0; i < devices.Length; i++)
        {
            await engine.EnrollDeviceAsync("pool-1", i % 2 == 0 ? "alice" : "bob", devices[i].Id, devices[i].PublicKey, default);
        }
    }

    internal static async Task<T> EventuallyAsync<T>(Func<T> probe, Func<T, bool> done, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var value = probe();
        while (!done(value) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            value = probe();
        }

        return value;
    }

    [Fact]
    public async Task A_leak_over_mqtt_yields_exactly_one_claim_and_one_payout_that_verifies_with_the_pool_jwks()
    {
        await using var host = await ClaimsHost.StartAsync(Options(key), key.Signer(), TimeProvider.System, default);
        await using var device = new SimulatedDevice("pi-flood-1");
        await SetUpPoolAsync(host.Engine, key.KeyName, device);
        Assert.Equal(MqttClientConnectResultCode.Success, (await device.ConnectAsync(host.Options.MqttPort, default)).ResultCode);
        await device.SubscribeReceiptsAsync(default);

        var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12);
        foreach (var record in records)
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, await device.PublishAsync(record, default));
        }

        var receipts = await device.WaitForReceiptsAsync(records, Wait);
        Assert.All(receipts, r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        Assert.Equal(records.Count, host.Engine.Evidence(device.Id).Count);

        var payouts = await EventuallyAsync(() => host.Engine.ListPayouts(), p => p.Count > 0, Wait);
        var payout = Assert.Single(payouts);
        var claim = Assert.Single(host.Engine.ListClaims());
        Assert.Equal("paid", claim.Status);
        Assert.Equal(payout.ClaimId, claim.Id);

        // The JWS verifies with the JWKS the HTTP API publishes.
        using var http = new HttpClient { BaseAddress = host.HttpAddress };
        var jwks = JsonNode.Parse(await http.GetStringAsync(new Uri("/pools/pool-1/jwks", UriKind.Relative)))!;
        var jwsText = await http.GetStringAsync(new Uri($"/claims/{claim.Id}/payout", UriKind.Relative));
        Assert.True(Jws.TryParse(jwsText, out var jws));
        var jwk = jwks["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == jws.Kid)!;
        Assert.True(Jws.Verify(jws, RsaPublicKey.FromJwk(jwk)));
        Assert.Equal(claim.Id, JsonNode.Parse(jws.Payload)!["claim"]!.GetValue<string>());

        var claims = await http.GetFromJsonAsync<JsonArray>(new Uri("/claims", UriKind.Relative));
        Assert.Single(claims!);
        var problem = await http.GetAsync(new Uri("/claims/nope", UriKind.Relative));
        Assert.Equal(System.Net.HttpStatusCode.NotFound, problem.StatusCode);
        Assert.Equal("application/problem+json", problem.Content.Headers.ContentType!.MediaType);
    }

    [Fact]
    public async Task A_device_that_asks_for_receipt_lists_gets_one_message_per_committed_batch_and_one_that_does_not_gets_one_per_record()
    {
        const int Records = 20;
        await using var host = await ClaimsHost.StartAsync(Options(key), key.Signer(), TimeProvider.System, default);
        await using var lister = new SimulatedDevice("pi-list-1") { AsksForReceiptLists = true };
        await using var single = new SimulatedDevice("pi-single-1");
        await SetUpPoolAsync(host.Engine, key.KeyName, lister, single);

        // The first committed batch waits (before its receipts) until all 40 messages have reached ingest,
        // so the rest are committed together; each batch the list device has records in is recorded.
        var batchesWithLister = 0;
        host.Ingest.AfterStoreBeforeReceipts = async (records, ct) =>
        {
            await EventuallyAsync(() => host.Ingest.Metrics.ReceivedCount, n => n >= 2 * Records, Wait);
            if (records.Any(r => r.DeviceId == lister.Id))
            {
                Interlocked.Increment(ref batchesWithLister);
            }
        };
        foreach (var device in new[] { lister, single })
        {
            Assert.Equal(MqttClientConnectResultCode.Success, (await device.ConnectAsync(host.Options.MqttPort, default)).ResultCode);
            await device.SubscribeReceiptsAsync(default);
        }

        var start = DateTimeOffset.UtcNow.AddMinutes(-30);
        var listed = lister.Quiet(start, Records);
        var singles = single.Quiet(start, Records);
        for (var i = 0; i < Records; i++)
        {
            Assert.Equal(MqttClientPublishReasonCode.Success, await lister.PublishAsync(listed[i], default));
            Assert.Equal(MqttClientPublishReasonCode.Success, await single.PublishAsync(singles[i], default));
        }

        Assert.All(await lister.WaitForReceiptsAsync(listed, Wait), r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        Assert.All(await single.WaitForReceiptsAsync(singles, Wait), r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        Assert.Equal(Records, single.ReceiptMessages);
        Assert.Equal(batchesWithLister, lister.ReceiptMessages);
        Assert.InRange(lister.ReceiptMessages, 1, Records / 2);
        Assert.Equal(2 * Records, host.Engine.Evidence(lister.Id).Count + host.Engine.Evidence(single.Id).Count);
    }

    [Fact]
    public async Task A_quiet_home_yields_no_claim()
    {
        await using var host = await ClaimsHost.StartAsync(Options(key), key.Signer(), TimeProvider.System, default);
        await using var device = new SimulatedDevice("pi-quiet-1");
        await SetUpPoolAsync(host.Engine, key.KeyName, device);
        await device.ConnectAsync(host.Options.MqttPort, default);
        await device.SubscribeReceiptsAsync(default);
        var records = device.Quiet(DateTimeOffset.UtcNow.AddMinutes(-60), 60);
        foreach (var record in records)
        {
            await device.PublishAsync(record, default);
        }

        Assert.All(await device.WaitForReceiptsAsync(records, Wait), r => Assert.Equal(ReceiptStatus.Stored, r.Status));
        await host.HousekeepOnceAsync(default);
        Assert.Empty(host.Engine.ListClaims());
        Assert.Empty(host.Engine.ListPayouts());
    }

    [Fact]
    public async Task Replayed_reordered_and_forged_records_never_change_the_decision()
    {
        await using var host = await ClaimsHost.StartAsync(Options(key), key.Signer(), TimeProvider.System, default);
        await using var device = new SimulatedDevice("pi-flood-2");
        await using var forger = new SimulatedDevice("pi-flood-2"); // same id, different key
        await SetUpPoolAsync(host.Engine, key.KeyName, device);
        await device.ConnectAsync(host.Options.MqttPort, default);
        await device.SubscribeReceiptsAsync(default);

        var start = DateTimeOffset.UtcNow.AddMinutes(-40);
        var records = device.Leak(start, wetMinutes: 12);

        // Forgeries: a "dry" record signed by another key under the device's id and sequence numbers,
        // and a genuine record with one byte flipped.
        var forged = Enumerable.Range(0, records.Count).Select(i => forger.Next(start.AddMinutes(i), new Reading("water_leak", null, 0, start.AddMinutes(i)))).ToList();
        var flipped = (byte[])records[5].Clone();
        flipped[^3] ^= 0x01;

        var stream = new List<byte[]>();
        stream.AddRange(forged.Take(6));
        stream.AddRange(records.OrderBy(_ => Random.Shared.Next()));
        stream.Add(flipped);
        stream.AddRange(records.Take(8));  // replays
        stream.AddRange(forged.Skip(6));
        foreach (var record in stream)
        {
            await device.PublishAsync(record, default);
        }

        await device.WaitForReceiptsAsync(stream, Wait);
        Assert.All(records, r => Assert.True(device.Receipts[Convert.ToHexStringLower(EvidenceRecord.Hash(r))].ReleasesRecord));
        Assert.All(forged, r => Assert.Equal("BadSignature", device.Receipts[Convert.ToHexStringLower(EvidenceRecord.Hash(r))].Reason));
        Assert.Equal(ReceiptStatus.Rejected, device.Receipts[Convert.ToHexStringLower(EvidenceRecord.Hash(flipped))].Status);

        var claim = Assert.Single(await EventuallyAsync(() => host.Engine.ListClaims(status: "paid"), c => c.Count > 0, Wait));
        Assert.Equal(2, claim.StartSequence);
        Assert.Equal(records.Skip(2).Take(11).Select(r => Convert.ToHexStringLower(EvidenceRecord.Hash(r))), claim.Evidence.Select(e => e!["sha256"]!.GetValue<string>()));
        Assert.Single(host.Engine.ListPayouts());
        Assert.True(host.Engine.RejectionCounts()["BadSignature"] >= forged.Count);
        Assert.True(host.Ingest.Metrics.Rejections["BadSignature"] >= forged.Count);
        Assert.Equal(8, host.Ingest.Metrics.DuplicateCount);
    }

    [Fact]
    public async Task A_device_publishing_on_another_devices_topic_is_refused()
    {
        await using var host = await ClaimsHost.StartAsync(Options(key), key.Signer(), TimeProvider.System, default);
        await using var mallory = new SimulatedDevice("pi-mallory");
        await using var victim = new SimulatedDevice("pi-victim");
        await SetUpPoolAsync(host.Engine, key.KeyName, victim, mallory);
        await mallory.ConnectAsync(host.Options.MqttPort, default);
        await mallory.SubscribeReceiptsAsync(default);

        var record = mallory.Next(DateTimeOffset.UtcNow, new Reading("water_leak", null, 1, DateTimeOffset.UtcNow));
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, await mallory.PublishAsync(record, default, EvidenceTopics.Evidence(victim.Id)));
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, await mallory.SubscribeReceiptsAsync(default, victim.Id));

        var rejection = Assert.Single(await EventuallyAsync(() => host.Engine.Rejections(reason: EvidenceIngest.TopicMismatch), r => r.Count > 0, Wait));
        Assert.Equal(EvidenceTopics.Evidence(victim.Id), rejection.Topic);
        Assert.Empty(host.Engine.Evidence(victim.Id));
        Assert.Empty(host.Engine.Evidence(mallory.Id));

        // A client that cannot prove a device key does not get in at all.
        await using var stranger = new SimulatedDevice("pi-victim");
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, (await stranger.ConnectAsync(host.Options.MqttPort, default)).ResultCode);
    }

    [Fact]
    public async Task Killing_the_service_between_storing_and_receipting_loses_nothing_and_pays_nothing_twice()
    {
        var db = key.NewDatabasePath();
        var port = SimulatedDevice.FreePort();
        await using var device = new SimulatedDevice("pi-crash-1");
        var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12);
        var stored = new TaskCompletionSource();

        var first = await ClaimsHost.StartAsync(Options(key, db, port) with { HousekeepingInterval = TimeSpan.FromHours(1) }, key.Signer(), TimeProvider.System, default);
        await SetUpPoolAsync(first.Engine, key.KeyName, device);
        first.Ingest.AfterStoreBeforeReceipts = async (batch, ct) =>
        {
            stored.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct); // the "crash": receipts never go out
        };
        await device.ConnectAsync(port, default);
        await device.SubscribeReceiptsAsync(default);
        foreach (var record in records)
        {
            await device.PublishAsync(record, default);
        }

        await stored.Task.WaitAsync(Wait);
        await first.DisposeAsync();
        Assert.Empty(device.Receipts);

        await using var second = await ClaimsHost.StartAsync(Options(key, db, port), key.Signer(), TimeProvider.System, default);
        var kept = second.Engine.Evidence(device.Id).Count;
        Assert.True(kept > 0, "the first batch was committed before the crash");

        // The agent never got receipts, so it resends everything.
        await device.DisconnectAsync();
        await device.ConnectAsync(port, default);
        await device.SubscribeReceiptsAsync(default);
        foreach (var record in records)
        {
            await device.PublishAsync(record, default);
        }

        var receipts = await device.WaitForReceiptsAsync(records, Wait);
        Assert.All(receipts, r => Assert.True(r.ReleasesRecord));
        Assert.Equal(kept, receipts.Count(r => r.Status == ReceiptStatus.Duplicate));
        Assert.Equal(records.Count, second.Engine.Evidence(device.Id).Count);
        await EventuallyAsync(() => second.Engine.ListPayouts(), p => p.Count > 0, Wait);
        await second.HousekeepOnceAsync(default);
        Assert.Single(second.Engine.ListClaims());
        Assert.Single(second.Engine.ListPayouts());
    }

    [Fact]
    public async Task Devices_can_connect_over_TLS_and_pin_the_broker_certificate()
    {
        var tlsPort = SimulatedDevice.FreePort();
        await using var host = await ClaimsHost.StartAsync(Options(key) with { MqttPort = 0, MqttTlsPort = tlsPort }, key.Signer(), TimeProvider.System, default);
        await using var device = new SimulatedDevice("pi-tls-1");
        await SetUpPoolAsync(host.Engine, key.KeyName, device);
        var pinned = host.BrokerCertificateFingerprint!;
        var result = await device.ConnectAsync(tlsPort, default, b => b.WithTlsOptions(t => t.UseTls().WithTargetHost("localhost")
            .WithCertificateValidationHandler(c => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(c.Certificate.GetRawCertData())) == pinned)));
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        await device.SubscribeReceiptsAsync(default);
        var record = device.Next(DateTimeOffset.UtcNow, new Reading("water_leak", null, 0, DateTimeOffset.UtcNow));
        await device.PublishAsync(record, default);
        Assert.Equal(ReceiptStatus.Stored, (await device.WaitForReceiptsAsync([record], Wait)).Single().Status);
    }
}
