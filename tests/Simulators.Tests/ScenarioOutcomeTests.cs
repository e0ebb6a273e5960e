using DeviceAgent.Sensors;

namespace Simulators.Tests;

/// <summary>Each scenario, run over virtual time with the real drivers, produces its defining condition (and only that).</summary>
public sealed class ScenarioOutcomeTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 15, 6, 0, 0, TimeSpan.Zero);
    private const double EightG = 8 * 9.80665;

    private static List<ScenarioStep> Run(string name, out SimulatedKit kit)
    {
        kit = SimulatedKit.Create(name, new ScenarioClock(Start));
        return [.. ScenarioRunner.Run(kit, kit.Duration)];
    }

    private static IEnumerable<(DateTimeOffset Time, double Value)> Values(IEnumerable<ScenarioStep> steps, string reading, bool includeEvents = false) =>
        steps.SelectMany(s => s.Polled.Concat(includeEvents ? s.Events : []))
            .SelectMany(sample => sample.Readings)
            .Where(r => r.Name == reading)
            .Select(r => (r.Time, r.Value));

    private static void NoFaults(IEnumerable<ScenarioStep> steps) =>
        Assert.All(steps.SelectMany(s => s.Polled.Concat(s.Events)), sample => Assert.Null(sample.Fault));

    [Fact]
    public void Home_flood_reads_water_leak_1_from_30_minutes_on_and_stays_wet()
    {
        var steps = Run("home-flood", out var kit);
        using var _ = kit;
        NoFaults(steps);
        var leak = Values(steps, "water_leak").ToList();
        var wetFrom = Start.AddMinutes(30).AddMilliseconds(200); // the event time plus the debounce

        Assert.All(leak.Where(x => x.Time < wetFrom), x => Assert.Equal(0, x.Value));
        Assert.All(leak.Where(x => x.Time >= wetFrom), x => Assert.Equal(1, x.Value));
        Assert.True(leak.Count(x => x.Value == 1) >= 140);
        var leakEvent = Assert.Single(steps.SelectMany(s => s.Events));
        Assert.Equal(wetFrom, leakEvent.Readings.Single().Time);
        Assert.Equal(1, leakEvent.Readings.Single().Value);
        Assert.True(Values(steps, "humidity").Last().Value > 80, "the air gets damp after the burst");
    }

    [Fact]
    public void Pipe_freeze_stays_below_0_degrees_for_at_least_2_hours()
    {
        var steps = Run("pipe-freeze", out var kit);
        using var _ = kit;
        NoFaults(steps);
        var temperatures = Values(steps, "temperature").ToList();

        Assert.True(temperatures[0].Value > 5);
        var longestFrozen = TimeSpan.Zero;
        DateTimeOffset? frozenSince = null;
        foreach (var (time, value) in temperatures)
        {
            if (value < 0)
            {
                frozenSince ??= time;
                longestFrozen = Max(longestFrozen, time - frozenSince.Value);
            }
            else
            {
                frozenSince = null;
            }
        }

        Assert.True(longestFrozen >= TimeSpan.FromHours(2), $"below 0 °C for {longestFrozen}");
        Assert.InRange(temperatures.Min(x => x.Value), -5.3, -4.7);
    }

    [Fact]
    public void Luggage_drop_gives_one_shock_above_8g_and_a_free_fall()
    {
        var steps = Run("luggage-drop", out var kit);
        using var _ = kit;
        NoFaults(steps);
        var shocks = Values(steps, "shock", includeEvents: true).ToList();
        var hard = shocks.Where(x => x.Value > EightG).ToList();

        var shock = Assert.Single(hard);
        Assert.Equal(12 * 9.80665, shock.Value, 0.2);
        Assert.Equal(Start.AddMinutes(25), shock.Time);
        Assert.Contains(Values(steps, "free_fall", includeEvents: true), x => x.Value == 1);
        Assert.All(shocks.Where(x => x.Time != shock.Time), x => Assert.InRange(x.Value, 9, 11)); // 1 g at rest
    }

    [Fact]
    public void Trip_delay_keeps_the_bag_within_1_km_of_the_origin_airport_for_48_hours()
    {
        var steps = Run("trip-delay", out var kit);
        using var _ = kit;
        NoFaults(steps);
        var origin = kit.HomeLocation;
        var positions = steps.Select(s => s.Polled.Single(p => p.SensorId == "gps"))
            .Select(p => (Time: p.Readings[0].Time, Lat: p.Readings.Single(r => r.Name == "latitude").Value, Lon: p.Readings.Single(r => r.Name == "longitude").Value))
            .ToList();

        var atOrigin = positions.TakeWhile(p => DistanceKm(origin.Latitude, origin.Longitude, p.Lat, p.Lon) <= 1).ToList();
        Assert.True(atOrigin[^1].Time - atOrigin[0].Time >= TimeSpan.FromHours(48));
        Assert.True(DistanceKm(origin.Latitude, origin.Longitude, positions[^1].Lat, positions[^1].Lon) > 400, "finally reaches Madrid");
        Assert.All(Values(steps, "gps_fix"), x => Assert.Equal(1, x.Value));
    }

    [Fact]
    public void Quiet_home_has_no_leak_no_freeze_no_shock()
    {
        var steps = Run("quiet-home", out var kit);
        using var _ = kit;
        NoFaults(steps);

        Assert.Empty(steps.SelectMany(s => s.Events)); // the 50 ms splash is debounced away
        Assert.All(Values(steps, "water_leak"), x => Assert.Equal(0, x.Value));
        var temperatures = Values(steps, "temperature").Select(x => x.Value).ToList();
        Assert.InRange(temperatures.Min(), 20.5, 21.5);
        Assert.InRange(temperatures.Max(), 20.5, 21.5);
        Assert.True(temperatures.Distinct().Count() > 5, "small noise, not a constant");
        Assert.DoesNotContain(steps.SelectMany(s => s.Polled), s => s.SensorId is "adxl345" or "gps");
    }

    [Fact]
    public void Kit_uses_real_drivers_over_simulated_buses()
    {
        using var home = SimulatedKit.Create("quiet-home", new ScenarioClock(Start));
        using var luggage = SimulatedKit.Create("luggage-drop", new ScenarioClock(Start));
        Assert.Equal(["DeviceAgent.Sensors.Bme280.Bme280Sensor", "DeviceAgent.Sensors.WaterLeak.WaterLeakProbe"], home.Sensors.Select(s => s.GetType().FullName));
        Assert.Equal(["adxl345", "gps", "bme280"], luggage.Sensors.Select(s => s.Id));
        Assert.IsAssignableFrom<IEventSensor>(luggage.Sensors[0]);
        Assert.Equal(("home", "luggage"), (home.DeviceKind, luggage.DeviceKind));
        Assert.Equal(TimeSpan.FromHours(4), home.Duration);
    }

    [Fact]
    public void Bus_fault_during_a_scenario_is_reported_as_a_sensor_fault()
    {
        using var kit = SimulatedKit.Create("quiet-home", new ScenarioClock(Start));
        kit.AdvanceTo(Start.AddMinutes(1));
        kit.Bme280Chip.Disconnected = true;
        var sample = kit.Sensors[0].Read(Start.AddMinutes(1));
        Assert.Empty(sample.Readings);
        Assert.Contains("I2C bus error", sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_scenario_gives_the_same_readings_twice()
    {
        static double[] Temperatures()
        {
            using var kit = SimulatedKit.Create("quiet-home", new ScenarioClock(Start));
            return [.. ScenarioRunner.Run(kit, TimeSpan.FromMinutes(30)).SelectMany(s => s.Polled).SelectMany(s => s.Readings).Where(r => r.Name == "temperature").Select(r => r.Value)];
        }

        Assert.Equal(Temperatures(), Temperatures());
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    // Haversine great-circle distance on a 6371 km sphere.
    private static double DistanceKm(double lat1, double lon1, double lat2, double lon2)
    {
        static double Rad(double d) => d * Math.PI / 180;
        var dLat = Rad(lat2 - lat1);
        var dLon = Rad(lon2 - lon1);
        var a = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(lat1)) * Math.Cos(Rad(lat2)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 6371 * 2 * Math.Atan2(Math.Sqrt(a), Math.Sqrt(1 - a));
    }
}
