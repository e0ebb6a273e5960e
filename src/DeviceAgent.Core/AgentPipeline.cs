using System.Security.Cryptography;
using DeviceAgent.Sensors;
using DeviceAgent.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ShareVault.Evidence;

namespace DeviceAgent;

/// <summary>
/// Reads the sensors on a schedule (and whenever an <see cref="IEventSensor"/> fires), turns what
/// they saw into an evidence record with the next sequence number and the chain's previous hash,
/// signs it with the device key and puts it in the durable outbox. Delivery (MQTT or a folder)
/// drains the outbox separately. Time comes from a <see cref="TimeProvider"/>, so simulators can
/// run it on virtual time.
/// </summary>
public sealed class AgentPipeline : IDisposable
{
    private readonly string _deviceId;
    private readonly IReadOnlyList<ISensor> _sensors;
    private readonly ECDsa _key;
    private readonly SequenceState _state;
    private readonly Outbox _outbox;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _recordGate = new();
    private long _durableSequence;
    private byte[] _durableHash;
    private bool _disposed;

    public AgentPipeline(
        string deviceId,
        IReadOnlyList<ISensor> sensors,
        ECDsa key,
        SequenceState state,
        Outbox outbox,
        TimeProvider time,
        ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(outbox);
        ArgumentNullException.ThrowIfNull(time);
        if (!Identifier.IsValid(deviceId))
        {
            throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
        }

        _deviceId = deviceId;
        _sensors = sensors;
        _key = key;
        _state = state;
        _outbox = outbox;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        _durableSequence = state.LastSequence;
        _durableHash = state.PreviousHash.ToArray();
        foreach (var sensor in sensors.OfType<IEventSensor>())
        {
            sensor.Triggered += OnTriggered;
        }
    }

    public string DeviceId => _deviceId;

    /// <summary>Records made so far by this pipeline instance.</summary>
    public long RecordsMade { get; private set; }

    /// <summary>Raised after each record is safely in the outbox (sequence, COSE bytes).</summary>
    public event EventHandler<RecordedEvidence>? Recorded;

    /// <summary>Polls every sensor now and records what they report.</summary>
    public RecordedEvidence CaptureNow() => CaptureAsync(CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Polls every sensor now and records what they report; completes once the record is durable in
    /// the outbox. The next capture may start before that, so records made back to back share one
    /// group commit (one fsync).
    /// </summary>
    public Task<RecordedEvidence> CaptureAsync(CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var readings = new List<Reading>();
        var faults = new List<SensorFault>();
        foreach (var sensor in _sensors)
        {
            Collect(sensor.Id, () => sensor.Read(now), readings, faults);
        }

        return RecordAsync(now, readings, faults, cancellationToken);
    }

    /// <summary>Polls the sensors every <paramref name="interval"/> until cancelled (first poll immediately).</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        while (!cancellationToken.IsCancellationRequested)
        {
            // The next poll is due one interval after this one starts, however long the record takes to become durable.
            var due = Task.Delay(interval, _time, cancellationToken);
            try
            {
                // A poll that has started finishes (its record becomes durable); the stop takes effect between polls.
                await CaptureAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (AgentFailures.IsExpected(e))
            {
                // The next poll records the state again; a full disk or a busy key is not the end of the agent.
                _log.LogWarning(e, "A record could not be made; the next poll records the state again");
            }

            try
            {
                await due.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Signs and enqueues one record and waits until it is durable (see <see cref="RecordAsync"/>).</summary>
    public RecordedEvidence Record(DateTimeOffset time, IReadOnlyList<Reading> readings, IReadOnlyList<SensorFault> faults) =>
        RecordAsync(time, readings, faults, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Signs one record with the next sequence number and the chain's previous hash and queues it for
    /// the outbox's next group commit. The task completes (and <see cref="Recorded"/> is raised) only
    /// after the fsync that covers the record; if that fails the task faults with the I/O error and
    /// the chain continues from the newest durable record (the service sees a sequence gap, as after a
    /// power cut).
    /// </summary>
    public async Task<RecordedEvidence> RecordAsync(
        DateTimeOffset time,
        IReadOnlyList<Reading> readings,
        IReadOnlyList<SensorFault> faults,
        CancellationToken cancellationToken = default)
    {
        Task<OutboxEntry> durable;
        RecordedEvidence recorded;
        lock (_recordGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var sequence = _state.Take();
            var record = new EvidenceRecord(_deviceId, sequence, time, _state.PreviousHash, readings, faults);
            var cose = EvidenceSigner.Sign(record, _key);
            durable = _outbox.AddAsync(sequence, cose, cancellationToken);
            _state.Advance(sequence, EvidenceRecord.Hash(cose));
            recorded = new RecordedEvidence(record, cose);
        }

        OutboxEntry entry;
        try
        {
            entry = await durable.ConfigureAwait(false);
        }
        catch (Exception) when (!durable.IsCompletedSuccessfully)
        {
            lock (_recordGate)
            {
                if (_state.LastSequence >= recorded.Record.Sequence)
                {
                    _state.Advance(_durableSequence, _durableHash);
                }
            }

            throw;
        }

        lock (_recordGate)
        {
            if (entry.Sequence > _durableSequence)
            {
                _durableSequence = entry.Sequence;
                _durableHash = Convert.FromHexString(entry.Hash);
            }

            RecordsMade++;
        }

        Recorded?.Invoke(this, recorded);
        return recorded;
    }

    private void OnTriggered(object? sender, SensorSample sample)
    {
        var readings = new List<Reading>();
        var faults = new List<SensorFault>();
        Collect(sample.SensorId, () => sample, readings, faults);
        try
        {
            Record(_time.GetUtcNow(), readings, faults);
        }
        catch (Exception e) when (AgentFailures.IsExpected(e))
        {
            // An event handler has no caller to report to; the next scheduled poll records the state again.
            _log.LogError(e, "An event from sensor {Sensor} could not be recorded; the next poll records the state again", sample.SensorId);
        }
    }

    /// <summary>Turns a sample into readings or a fault; a driver that throws or returns implausible data becomes a fault.</summary>
    private void Collect(string sensorId, Func<SensorSample> read, List<Reading> readings, List<SensorFault> faults)
    {
        SensorSample sample;
        try
        {
            sample = read();
        }
        catch (Exception e) when (AgentFailures.IsExpected(e))
        {
            // The bus or the driver failed: recorded as the sensor's fault (the record still goes out), and logged.
            _log.LogWarning(e, "Sensor {Sensor} could not be read", sensorId);
            faults.Add(new SensorFault(sensorId, $"driver error: {e.GetType().Name}: {e.Message}"));
            return;
        }

        if (sample.Fault is { } fault)
        {
            faults.Add(new SensorFault(sample.SensorId, fault));
        }

        foreach (var reading in sample.Readings)
        {
            if (!double.IsFinite(reading.Value) || string.IsNullOrEmpty(reading.Name))
            {
                faults.Add(new SensorFault(sample.SensorId, $"non-finite or unnamed reading '{reading.Name}' discarded"));
                continue;
            }

            readings.Add(reading);
        }

        if (sample.Fault is not null)
        {
            _log.LogWarning("Sensor {Sensor} reports a fault: {Fault}", sample.SensorId, sample.Fault);
        }
    }

    public void Dispose()
    {
        lock (_recordGate)
        {
            if (!_disposed && _durableSequence > 0)
            {
                try
                {
                    // A clean stop leaves the state file current (a crash recovers the same from the outbox's head).
                    _state.PersistDurable(_durableSequence, _durableHash);
                }
                catch (IOException e)
                {
                    _log.LogWarning(e, "Sequence state not written at stop (recovered from the outbox on start)");
                }
            }

            _disposed = true;
        }

        foreach (var sensor in _sensors.OfType<IEventSensor>())
        {
            sensor.Triggered -= OnTriggered;
        }
    }
}

/// <summary>A record the pipeline made: its decoded payload and its COSE_Sign1 bytes.</summary>
public sealed record RecordedEvidence(EvidenceRecord Record, byte[] Cose);
