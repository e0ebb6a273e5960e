using DeviceAgent.Configuration;
using DeviceAgent.Delivery;
using DeviceAgent.Keys;
using DeviceAgent.Storage;
using Microsoft.Extensions.Logging;

namespace DeviceAgent;

/// <summary>Wires a configuration into a running agent: key, outbox, sequence state, pipeline and delivery.</summary>
public static class AgentHost
{
    public static async Task RunAsync(AgentConfig config, SensorRegistry sensors, TimeProvider time, ILoggerFactory logging, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sensors);
        ArgumentNullException.ThrowIfNull(logging);
        var log = logging.CreateLogger(typeof(AgentHost));
        if (config.PollSeconds <= 0)
        {
            throw new FormatException("pollSeconds must be > 0");
        }

        var sinkDirectory = config.Sink.Directory;
        if (config.Sink.Kind == AgentSinkKind.Mqtt && config.Broker is null)
        {
            throw new FormatException("sink 'mqtt' needs a broker section");
        }

        using var key = DeviceKey.Open(config.Key, config.AllowSoftwareKey, config.DataDir);
        using var outbox = Outbox.Open(Path.Combine(config.DataDir, "outbox"), config.Outbox.ToLimits(), time);
        var state = SequenceState.Open(config.DataDir, outbox);
        var sensorList = sensors.CreateAll(config.Sensors);
        try
        {
            using var pipeline = new AgentPipeline(config.DeviceId, sensorList, key.Signer, state, outbox, time, logging.CreateLogger<AgentPipeline>());
            log.LogInformation("device-agent {Device}: {KeyKind} key, {Sensors} sensor(s), next sequence {Sequence}, {Waiting} record(s) waiting, sink {Sink}",
                config.DeviceId, key.IsHardware ? "hardware" : "SOFTWARE", sensorList.Count, state.NextSequence, outbox.Count, config.Sink);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var reading = pipeline.RunAsync(TimeSpan.FromSeconds(config.PollSeconds), stop.Token);
            Task delivering;
            MqttDelivery? delivery = null;
            if (sinkDirectory is not null)
            {
                delivering = new DirectorySink(sinkDirectory, outbox).RunAsync(stop.Token);
            }
            else
            {
                delivery = new MqttDelivery(config.DeviceId, config.Broker!.ToOptions() with { DeviceProofKey = config.Broker.DeviceProof ? key.Signer : null }, outbox, time, logging.CreateLogger<MqttDelivery>(),
                    () => new ShareVault.Evidence.DeviceStatus(true, state.LastSequence, outbox.Count, outbox.DroppedWhenFull));
                delivering = delivery.RunAsync(stop.Token);
            }

            try
            {
                // Whichever ends first (cancellation, or a failure such as a lost hardware key) stops the other.
                await Task.WhenAny(reading, delivering).ConfigureAwait(false);
                await stop.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(reading, delivering).ConfigureAwait(false);
            }
            catch (Exception e) when (AgentFailures.IsExpected(e))
            {
                // A store or delivery failure ends the run (systemd restarts it); the caller prints the one-line reason.
                log.LogError(e, "device-agent {Device} stopped: recording or delivering evidence failed", config.DeviceId);
                throw;
            }
            finally
            {
                if (delivery is not null)
                {
                    await delivery.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            foreach (var sensor in sensorList)
            {
                sensor.Dispose();
            }
        }
    }
}
