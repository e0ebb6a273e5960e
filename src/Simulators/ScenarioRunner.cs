using DeviceAgent.Sensors;

namespace Simulators;

/// <summary>What one step of a scenario produced: the scheduled reads, and the events raised since the previous step.</summary>
public sealed record ScenarioStep(DateTimeOffset Time, IReadOnlyList<SensorSample> Polled, IReadOnlyList<SensorSample> Events);

/// <summary>
/// Runs a kit over virtual time: at each step the world (and the clock) advances, event sensors' Triggered
/// samples raised on the way are collected, and every sensor is read — what the agent's schedule does.
/// </summary>
public static class ScenarioRunner
{
    /// <summary>Steps from the kit's start to <paramref name="length"/> later (inclusive), reading every <paramref name="step"/>.</summary>
    public static IEnumerable<ScenarioStep> Run(SimulatedKit kit, TimeSpan length, TimeSpan? step = null)
    {
        ArgumentNullException.ThrowIfNull(kit);
        var interval = step ?? kit.Step;
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero, nameof(step));
        return RunCore(kit, length, interval);
    }

    private static IEnumerable<ScenarioStep> RunCore(SimulatedKit kit, TimeSpan length, TimeSpan interval)
    {
        var events = new List<SensorSample>();
        var gate = new Lock();
        void OnTriggered(object? sender, SensorSample sample)
        {
            lock (gate)
            {
                events.Add(sample);
            }
        }

        var eventSensors = kit.Sensors.OfType<IEventSensor>().ToArray();
        foreach (var sensor in eventSensors)
        {
            sensor.Triggered += OnTriggered;
        }

        try
        {
            for (var offset = TimeSpan.Zero; offset <= length; offset += interval)
            {
                var time = kit.Start + offset;
                kit.AdvanceTo(time);
                SensorSample[] raised;
                lock (gate)
                {
                    raised = [.. events];
                    events.Clear();
                }

                var polled = kit.Sensors.Select(s => s.Read(time)).ToArray();
                yield return new ScenarioStep(time, polled, raised);
            }
        }
        finally
        {
            foreach (var sensor in eventSensors)
            {
                sensor.Triggered -= OnTriggered;
            }
        }
    }
}
