using DeviceAgent.Sensors;
using ShareVault.Evidence;

namespace DeviceAgent.Tests.Support;

/// <summary>A test sensor (not a driver): returns a temperature that rises by 0.5 °C per read.</summary>
internal sealed class CountingThermometer(string id = "thermo") : ISensor
{
    private int _reads;

    public string Id => id;

    public SensorSample Read(DateTimeOffset now) => new(id, [new Reading("temperature", "Cel", 20 + (0.5 * _reads++), now)]);

    public void Dispose()
    {
    }
}

/// <summary>A sensor whose bus always fails.</summary>
internal sealed class BrokenSensor(string id = "broken") : ISensor
{
    public string Id => id;

    public SensorSample Read(DateTimeOffset now) => throw new IOException("I2C transfer failed (EREMOTEIO)");

    public void Dispose()
    {
    }
}

/// <summary>A sensor that reports a fault sample.</summary>
internal sealed class FaultySensor(string id = "bme280") : ISensor
{
    public string Id => id;

    public SensorSample Read(DateTimeOffset now) => SensorSample.Faulted(id, "unknown chip id 0x55 (expected 0x60)");

    public void Dispose()
    {
    }
}

/// <summary>An event sensor the test fires by hand (a leak pin going wet).</summary>
internal sealed class ManualLeakProbe(string id = "leak") : IEventSensor
{
    public event EventHandler<SensorSample>? Triggered;

    public string Id => id;

    public bool Wet { get; private set; }

    public SensorSample Read(DateTimeOffset now) => new(id, [new Reading("water_leak", null, Wet ? 1 : 0, now)]);

    public void Fire(DateTimeOffset now)
    {
        Wet = true;
        Triggered?.Invoke(this, Read(now));
    }

    public void Dispose()
    {
    }
}

internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "agent-test-" + Guid.NewGuid().ToString("N")[..12]);

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder is harmless.
        }
    }
}

/// <summary>A TimeProvider the test moves by hand.</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
