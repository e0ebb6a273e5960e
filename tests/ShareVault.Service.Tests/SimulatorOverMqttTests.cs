using System.Security.Cryptography;
using DeviceAgent.Keys;
using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;

namespace ShareVault.Service.Tests;

/// <summary>
/// The real agent pipeline on a simulated kit, run as its own process (the simulators CLI with
/// <c>--broker</c>), delivering over the embedded broker to the real service: the device side and
/// the service side meet only over MQTT.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class SimulatorOverMqttTests(PoolKeyFixture key) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sv-simmqtt-").FullName;

    [Fact]
    public async Task A_simulated_flood_delivered_by_the_agent_pipeline_yields_one_claim_and_one_payout()
    {
        var deviceUri = SoftHsm.Shared.Uri("device-hsm", $"kit-{Guid.NewGuid():N}"[..12]);
        byte[] spki;
        using (var deviceKey = DeviceKey.Create(deviceUri, allowSoftwareKey: false))
        {
            spki = deviceKey.Signer.ExportSubjectPublicKeyInfo();
        }

        var options = IngestOverMqttTests.Options(key);
        await using var host = await ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default);
        await host.Engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", key.KeyName, 50_000, default);
        await host.Engine.AddMemberAsync("pool-1", "alice", "Alice", default);
        await host.Engine.IssuePolicyAsync("pool-1", "alice", "pol-alice-flood", "water_leak == 1 for 10m", 25_000, 0, null, default);
        await host.Engine.RecordPremiumAsync("pool-1", "alice", 60_000, default);
        await host.Engine.EnrollDeviceAsync("pool-1", "alice", "kit-alice", spki, default);

        var run = await ProcessRunner.RunAsync("dotnet",
            SimulatorProcess.Arguments("run", "--scenario", "home-flood", "--minutes", "60",
             "--device-id", "kit-alice", "--key", deviceUri, "--sink", $"dir:{_dir}", "--broker", $"mqtt://127.0.0.1:{options.MqttPort}"),
            TimeSpan.FromMinutes(3), new Dictionary<string, string> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });

        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("0 still in the outbox", run.StdOut, StringComparison.Ordinal);
        var records = host.Engine.Evidence("kit-alice", 0, int.MaxValue);
        Assert.Equal(Enumerable.Range(1, records.Count).Select(i => (long)i), records.Select(r => r.Sequence));
        Assert.True(records.Count >= 61, $"{records.Count} records stored");
        var payouts = await IngestOverMqttTests.EventuallyAsync(() => host.Engine.ListPayouts("pool-1"), p => p.Count > 0, TimeSpan.FromSeconds(30));
        Assert.Single(payouts);
        Assert.Single(host.Engine.ListClaims("pool-1"));
        using var verifier = ECDsa.Create();
        verifier.ImportSubjectPublicKeyInfo(spki, out _);
        Assert.All(records, r => Assert.True(ShareVault.Evidence.EvidenceVerifier.Verify(r.Cose, _ => verifier).IsValid));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
