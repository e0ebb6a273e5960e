using System.Text.Json.Nodes;
using DeviceAgent.Delivery;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Rules;
using ShareVault.Claims.TestSupport;
using Simulators.Scenarios;
using ScenarioDevice = Simulators.SimulatedDevice;

namespace ShareVault.Service.Tests;

/// <summary>
/// Travel cover (and the frozen pipe for homes) end to end, one test per rule kind that fires and
/// one where it must not: a scenario's simulated kit read by the dotnet/iot drivers, the real agent
/// pipeline signing records into its outbox, MQTT delivery to the service's embedded broker, the
/// trigger, the claim, the threshold-signed payout, and <c>ledger verify</c> recomputing the trigger
/// from the exported evidence. Scenario clocks are compressed: two days of a trip run in a second
/// or two, with the records timed in the recent past (start = now − scenario length − offset).
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class TravelCoverOverMqttTests(PoolKeyFixture key) : IDisposable
{
    private const string Sequence = "free_fall == 1 then shock > 8 g within 1s";
    private const string Conjunction = "distance_from(origin) < 1 km for 48h during trip and gps_fix >= 1";
    private const string Geofence = "distance_from(destination) > 100 km for 24h during trip";
    private const string Absence = "no record for 48h during trip";
    private const string Freeze = "temperature < 0 °C for 2h";

    private readonly string _dir = Directory.CreateTempSubdirectory("sv-travel-").FullName;

    public static TheoryData<string, string, double?, double> Firing => new()
    {
        { Sequence, "luggage-drop", null, 0 },
        { Conjunction, "trip-delay", null, 0 },
        { Geofence, "lost-bag", null, 0 },
        { Absence, "lost-bag", null, 50 },    // the service looks 50 h after the tag's last record arrived
        { Freeze, "pipe-freeze", null, 0 },
    };

    public static TheoryData<string, string, double?, double> NotFiring => new()
    {
        { Sequence, "luggage-bump", null, 0 },   // a 12 g shock without a free fall before it
        { Conjunction, "trip-delay", 2400, 0 },  // 40 h at the origin so far: not yet 48 h
        { Geofence, "trip-delay", 1200, 0 },     // 20 h away from the destination so far: not yet 24 h
        { Absence, "lost-bag", null, 40 },       // silent for 40 h: not yet 48 h
        { Freeze, "quiet-home", null, 0 },
    };

    [Theory]
    [MemberData(nameof(Firing))]
    public async Task A_travel_rule_fires_from_scenario_to_signed_payout_and_ledger_verify_recomputes_it(string rule, string scenario, double? minutes, double silenceHours)
    {
        var (engine, claims, payouts, export) = await RunAsync(rule, scenario, minutes, silenceHours);

        var claim = Assert.Single(claims);
        Assert.Equal("paid", claim.Status);
        var payout = Assert.Single(payouts);
        Assert.Equal(claim.Id, payout.ClaimId);
        Assert.Equal(25_000, claim.Amount);
        var verification = LedgerVerifier.Verify(export);
        Assert.True(verification.IsValid, verification.Detail);
        Assert.Equal(1, verification.Payouts);
        Assert.Equal(1, verification.Reevaluated);
        Assert.Equal(TriggerRule.Parse(rule).Text, engine.ListPolicies("pool-1").Single().Rule);
    }

    [Theory]
    [MemberData(nameof(NotFiring))]
    public async Task A_travel_rule_does_not_fire_when_the_scenario_misses_it(string rule, string scenario, double? minutes, double silenceHours)
    {
        var (_, claims, payouts, export) = await RunAsync(rule, scenario, minutes, silenceHours);

        Assert.Empty(claims);
        Assert.Empty(payouts);
        Assert.True(LedgerVerifier.Verify(export).IsValid);
    }

    private async Task<(ClaimsEngine Engine, IReadOnlyList<ShareVault.Claims.Lifecycle.ClaimInfo> Claims, IReadOnlyList<ShareVault.Claims.Payouts.PayoutInfo> Payouts, string Export)> RunAsync(
        string rule, string scenarioName, double? minutes, double silenceHours)
    {
        var scenario = Scenario.BuiltIn(scenarioName);
        var length = minutes is { } m ? TimeSpan.FromMinutes(m) : scenario.Duration;
        var now = DateTimeOffset.UtcNow;
        var start = now - length - TimeSpan.FromMinutes(1);
        var deviceId = "tag-" + Guid.NewGuid().ToString("N")[..8];
        using var device = ScenarioDevice.Open(scenario, deviceId, Path.Combine(_dir, deviceId), "file:" + Path.Combine(_dir, deviceId, "key.pem"), allowSoftwareKey: true, start);
        // Homes poll every 5 minutes here (their scenarios suggest 1): hours of a frozen pipe in fewer records.
        var records = device.Run(length, scenario.DeviceKind == "home" ? TimeSpan.FromMinutes(5) : null);
        Assert.NotEmpty(records);

        var options = IngestOverMqttTests.Options(key);
        var clock = new ShiftedClock();
        await using var host = await ClaimsHost.StartAsync(options, key.Signer(), clock, default);
        var engine = host.Engine;
        await engine.CreatePoolAsync("pool-1", "Travellers", "EUR", key.KeyName, 50_000, default);
        await engine.AddMemberAsync("pool-1", "carol", "Carol", default);
        var context = new RuleContext(
            new Dictionary<string, Place> { ["origin"] = new(38.7742, -9.1342), ["destination"] = new(40.4983, -3.5676) },
            new Dictionary<string, TimeWindow> { ["trip"] = new(now.AddDays(-6), now.AddDays(3)) });
        await engine.IssuePolicyAsync("pool-1", "carol", "pol-carol", rule, 25_000, 0, context, default);
        await engine.RecordPremiumAsync("pool-1", "carol", 60_000, default);
        await engine.EnrollDeviceAsync("pool-1", "carol", deviceId, device.Signer.ExportSubjectPublicKeyInfo(), default);

        await DeliverAsync(device, options.MqttPort);
        Assert.Equal(records.Count, engine.Evidence(deviceId, 0, int.MaxValue).Count);

        // The service's clock moves on (an absence is decided on it), then what housekeeping does
        // every 200 ms, once more now that every record is stored: the clock's decisions, payouts, checkpoints.
        clock.Shift = TimeSpan.FromHours(silenceHours);
        await host.HousekeepOnceAsync(default);
        await host.HousekeepOnceAsync(default);
        await engine.CheckpointAsync("pool-1", force: true, default); // null when housekeeping already signed the head
        var export = LedgerExport.ToText(engine.ExportLedger("pool-1"));
        return (engine, engine.ListClaims("pool-1"), engine.ListPayouts("pool-1"), export);
    }

    // The agent's delivery (MqttDelivery, device login by signed proof): a record leaves the outbox only on the service's stored-receipt.
    private static async Task DeliverAsync(ScenarioDevice device, int port)
    {
        var options = new DeviceAgent.Delivery.BrokerOptions { Uri = new Uri($"mqtt://127.0.0.1:{port}"), DeviceProofKey = device.Signer, MinBackoff = TimeSpan.FromMilliseconds(250) };
        var delivery = new MqttDelivery(device.DeviceId, options, device.Outbox, TimeProvider.System);
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var running = delivery.RunAsync(stop.Token);
        await IngestOverMqttTests.EventuallyAsync(() => device.Outbox.Count, n => n == 0, TimeSpan.FromMinutes(2));
        await stop.CancelAsync();
        await running;
        await delivery.DisposeAsync();
        Assert.Equal(0, device.Outbox.Count);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The system clock moved forward by <see cref="Shift"/>: days pass for the service in an instant; its timers stay the system's.</summary>
    private sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Shift { get; set; }

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Shift;
    }
}
