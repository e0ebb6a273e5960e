using DeviceAgent.Sensors;

namespace DeviceAgent.Configuration;

/// <summary>
/// Maps a configured sensor type (<c>bme280</c>, <c>leak-probe</c>, <c>adxl345</c>, <c>gps</c>…) to
/// the code that opens its bus and constructs its driver. INTEGRATION POINT: the drivers in
/// <c>Sensors/&lt;Chip&gt;/</c> register their factories here (see <see cref="Default"/>).
/// </summary>
public sealed class SensorRegistry
{
    private readonly Dictionary<string, Func<SensorConfig, ISensor>> _factories = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The registry the <c>run</c> command uses.</summary>
    public static SensorRegistry Default { get; } = PiSensors.Register(new SensorRegistry());

    public IReadOnlyCollection<string> Types => _factories.Keys;

    public SensorRegistry Register(string type, Func<SensorConfig, ISensor> factory)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        ArgumentNullException.ThrowIfNull(factory);
        _factories[type] = factory;
        return this;
    }

    public IReadOnlyList<ISensor> CreateAll(IEnumerable<SensorConfig> configs)
    {
        ArgumentNullException.ThrowIfNull(configs);
        var sensors = new List<ISensor>();
        try
        {
            foreach (var config in configs)
            {
                if (!_factories.TryGetValue(config.Type, out var factory))
                {
                    throw new InvalidOperationException(
                        $"Sensor type '{config.Type}' is not available in this build (known: {(_factories.Count == 0 ? "none" : string.Join(", ", _factories.Keys.Order(StringComparer.Ordinal)))})");
                }

                sensors.Add(factory(config));
            }

            return sensors;
        }
        catch
        {
            foreach (var sensor in sensors)
            {
                sensor.Dispose();
            }

            throw;
        }
    }
}
