using ShareVault.Evidence;


namespace DeviceAgent.Sensors;

/// <summary>
/// A sensor driver as the agent sees it. Drivers receive their bus object (I2cDevice, SpiDevice,
/// GpioController, serial Stream) in their constructor; this seam is what the agent polls.
/// </summary>
public interface ISensor : IDisposable
{
    /// <summary>Stable id within the kit, e.g. <c>bme280</c>, <c>leak-probe</c>, <c>adxl345</c>, <c>gps</c>.</summary>
    string Id { get; }

    /// <summary>Reads the sensor now. Bus errors, unknown chips and implausible values come back as a fault, not as readings.</summary>
    SensorSample Read(DateTimeOffset now);
}

/// <summary>A sensor that also reports events between polls (leak pin change, shock, free fall).</summary>
public interface IEventSensor : ISensor
{
    event EventHandler<SensorSample>? Triggered;
}

/// <summary>What one read produced: readings, or a fault explaining why there are none.</summary>
public sealed record SensorSample(string SensorId, IReadOnlyList<Reading> Readings, string? Fault = null)
{
    public static SensorSample Faulted(string sensorId, string fault) => new(sensorId, [], fault);
}
