using System.Security.Cryptography;
using DeviceAgent;
using DeviceAgent.Sensors;
using DeviceAgent.Storage;
using ShareVault.Evidence;

// Crash drill child: makes records as fast as the real pipeline allows (many in flight, so they share
// group commits) in the data folder given as the only argument, and prints "acked <seq> <sha256>" for
// each record once the pipeline acknowledged it (after the fsync that covers it). It runs until
// killed; the test kills it with SIGKILL and checks every acknowledged record on disk.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: DeviceAgent.CrashProbe DATA_DIR");
    return 2;
}

var dataDir = args[0];
using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
using var outbox = Outbox.Open(Path.Combine(dataDir, "outbox"), new OutboxLimits { MaxRecords = int.MaxValue, MaxBytes = long.MaxValue });
using var pipeline = new AgentPipeline("crash-probe", [new Thermometer()], key, SequenceState.Open(dataDir, outbox), outbox, TimeProvider.System);
var stdout = Console.Out;
var inFlight = new Queue<Task<RecordedEvidence>>();
while (true)
{
    inFlight.Enqueue(pipeline.CaptureAsync());
    while (inFlight.Count > 64 || (inFlight.Count > 0 && inFlight.Peek().IsCompleted))
    {
        var done = await inFlight.Dequeue().ConfigureAwait(false);
        await stdout.WriteLineAsync($"acked {done.Record.Sequence} {Convert.ToHexStringLower(EvidenceRecord.Hash(done.Cose))}").ConfigureAwait(false);
        await stdout.FlushAsync().ConfigureAwait(false);
    }
}

internal sealed class Thermometer : ISensor
{
    private int _reads;

    public string Id => "thermo";

    public SensorSample Read(DateTimeOffset now) => new(Id, [new Reading("temperature", "Cel", 20 + (0.01 * _reads++), now)]);

    public void Dispose()
    {
    }
}
