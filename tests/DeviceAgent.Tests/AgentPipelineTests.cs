using System.Security.Cryptography;
using DeviceAgent.Delivery;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;
using ShareVault.Evidence;

namespace DeviceAgent.Tests;

public sealed class AgentPipelineTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 24, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Records_are_signed_sequenced_and_hash_chained()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        var time = new ManualTime(Start);
        using var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, time);

        var made = new List<RecordedEvidence>();
        for (var i = 0; i < 3; i++)
        {
            made.Add(pipeline.CaptureNow());
            time.Advance(TimeSpan.FromMinutes(1));
        }

        var verified = made.Select(m => EvidenceVerifier.Verify(m.Cose, _ => key)).ToList();
        Assert.All(verified, v => Assert.True(v.IsValid, v.ToString()));
        Assert.Equal([1L, 2L, 3L], verified.Select(v => v.Record!.Sequence));
        Assert.True(verified[0].Record!.IsChainStart);
        Assert.True(verified[1].Record!.Follows(made[0].Cose));
        Assert.True(verified[2].Record!.Follows(made[1].Cose));
        Assert.Equal(21.0, verified[2].Record!.Readings.Single().Value);
        Assert.Equal(Start.AddMinutes(2), verified[2].Record!.Time);
        Assert.Equal(3, outbox.Count);
    }

    [Fact]
    public void Sensor_failures_become_faults_not_readings()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        using var pipeline = new AgentPipeline("pi-1", [new CountingThermometer(), new BrokenSensor(), new FaultySensor()], key,
            SequenceState.Open(dir.Path, outbox), outbox, new ManualTime(Start));

        var record = EvidenceVerifier.Verify(pipeline.CaptureNow().Cose, _ => key).Record!;

        Assert.Single(record.Readings);
        Assert.Equal(2, record.Faults.Count);
        Assert.Contains(record.Faults, f => f.SensorId == "broken" && f.Message.Contains("EREMOTEIO", StringComparison.Ordinal));
        Assert.Contains(record.Faults, f => f.SensorId == "bme280" && f.Message.Contains("chip id", StringComparison.Ordinal));
    }

    [Fact]
    public void Event_sensor_trigger_records_immediately()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        var probe = new ManualLeakProbe();
        var time = new ManualTime(Start);
        using var pipeline = new AgentPipeline("pi-1", [probe], key, SequenceState.Open(dir.Path, outbox), outbox, time);

        time.Advance(TimeSpan.FromSeconds(17));
        probe.Fire(time.GetUtcNow());

        var entry = Assert.Single(outbox.Snapshot());
        var record = EvidenceVerifier.Verify(outbox.Read(entry), _ => key).Record!;
        Assert.Equal(new Reading("water_leak", null, 1, Start.AddSeconds(17)), Assert.Single(record.Readings));
    }

    [Fact]
    public async Task Scheduled_run_polls_on_the_time_providers_clock()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        var clock = new Simulators.ScenarioClock(Start);
        using var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, clock);
        using var stop = new CancellationTokenSource();

        // Virtual time only: the first poll is immediate, then one per advanced minute, however slow the disk.
        var running = pipeline.RunAsync(TimeSpan.FromMinutes(1), stop.Token);
        for (var polls = 1; polls <= 4; polls++)
        {
            await WaitForAsync(() => outbox.Count == polls);
            Assert.Equal(polls, outbox.Count);
            clock.Advance(TimeSpan.FromSeconds(59));
            await Task.Delay(20);
            Assert.Equal(polls, outbox.Count);
            clock.Advance(TimeSpan.FromSeconds(1));
        }

        await WaitForAsync(() => outbox.Count == 5);
        await stop.CancelAsync();
        await running;
        Assert.Equal(5, outbox.Count);
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }
    }

    [Fact]
    public void Restarted_pipeline_continues_the_sequence_and_the_chain()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        byte[] last;
        using (var outbox = Outbox.Open(dir.Sub("outbox")))
        using (var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, new ManualTime(Start)))
        {
            pipeline.CaptureNow();
            last = pipeline.CaptureNow().Cose;
        }

        using var reopened = Outbox.Open(dir.Sub("outbox"));
        using var again = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, reopened), reopened, new ManualTime(Start));
        var next = again.CaptureNow().Record;
        Assert.Equal(3, next.Sequence);
        Assert.True(next.Follows(last));
    }

    [Fact]
    public void Directory_sink_writes_verifiable_seq_files_and_empties_the_outbox()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        using var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, new ManualTime(Start));
        pipeline.CaptureNow();
        pipeline.CaptureNow();

        var sink = new DirectorySink(dir.Sub("evidence"), outbox);
        Assert.Equal(2, sink.DrainOnce());

        Assert.Equal(0, outbox.Count);
        Assert.Equal(["1.cose", "2.cose"], Directory.GetFiles(dir.Sub("evidence")).Select(Path.GetFileName).Order());
        var second = EvidenceVerifier.Verify(File.ReadAllBytes(Path.Combine(dir.Sub("evidence"), "2.cose")), _ => key);
        Assert.True(second.IsValid);
        Assert.True(second.Record!.Follows(File.ReadAllBytes(Path.Combine(dir.Sub("evidence"), "1.cose"))));
    }
}
