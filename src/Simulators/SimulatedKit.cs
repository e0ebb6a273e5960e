using System.Device.Gpio;
using System.Numerics;
using DeviceAgent.Sensors;
using DeviceAgent.Sensors.Adxl345;
using DeviceAgent.Sensors.Bme280;
using DeviceAgent.Sensors.Gps;
using DeviceAgent.Sensors.WaterLeak;
using Simulators.Buses;
using Simulators.Devices;
using Simulators.Scenarios;

namespace Simulators;

/// <summary>
/// A sensor kit for one scenario: the REAL drivers from DeviceAgent over simulated buses, and a world
/// model that moves the simulated chips along the scenario's timeline.
/// <list type="bullet">
/// <item><c>home</c> kit: BME280 at I2C 1/0x76, water-leak probe on GPIO 17 (wet = low, 200 ms debounce).</item>
/// <item><c>luggage</c> kit: ADXL345 on SPI 0.0 (CE0) with INT1 on GPIO 23 and INT2 on GPIO 24, NMEA GPS on the
/// serial port, BME280 at I2C 1/0x76.</item>
/// </list>
/// Drive it with <see cref="AdvanceTo"/>; with a <see cref="ScenarioClock"/> the kit also moves the clock,
/// stopping at each timeline event so debounce timers and interrupts see the right times.
/// </summary>
public sealed class SimulatedKit : IDisposable
{
    public const int LeakPin = WaterLeakProbe.DefaultPin;
    public const int AccelerometerInt1Pin = 23;
    public const int AccelerometerInt2Pin = 24;
    public static readonly TimeSpan LeakDebounce = TimeSpan.FromMilliseconds(200);

    private static readonly Vector3 Gravity = new(0, 0, 1);

    private readonly Lock _gate = new();
    private readonly TimeProvider _clock;
    private readonly GpioController _gpioController;
    private readonly List<ISensor> _sensors = [];
    private DateTimeOffset _worldTime;

    private SimulatedKit(Scenario scenario, TimeProvider clock)
    {
        Scenario = scenario;
        _clock = clock;
        Start = clock.GetUtcNow();
        Gpio = new SimulatedGpioDriver();
        _gpioController = new GpioController(Gpio);
        Bme280Chip = new SimulatedBme280(busId: 1, address: Bme280Sensor.DefaultI2cAddress);
        var (t, h, p) = EnvironmentAt(0);
        Bme280Chip.SetEnvironment(t, h, p);

        if (scenario.DeviceKind == Scenario.HomeKit)
        {
            _sensors.Add(new Bme280Sensor(Bme280Chip));
            Gpio.SetInput(LeakPin, PinValue.High); // dry: the pull-up holds the line high
            _sensors.Add(new WaterLeakProbe(_gpioController, LeakPin, LeakDebounce, clock));
        }
        else
        {
            Accelerometer = new SimulatedAdxl345(Adxl345Sensor.DefaultSpiBus, Adxl345Sensor.DefaultChipSelect);
            Accelerometer.ConnectInterrupts(Gpio, AccelerometerInt1Pin, AccelerometerInt2Pin);
            GpsStream = new SimulatedNmeaStream(clock, scenario.Location.Latitude, scenario.Location.Longitude);
            _sensors.Add(new Adxl345Sensor(Accelerometer, clock, shockThresholdG: 8, _gpioController, AccelerometerInt1Pin, AccelerometerInt2Pin));
            _sensors.Add(new NmeaGps(GpsStream));
            _sensors.Add(new Bme280Sensor(Bme280Chip));
        }

        // Like an agent starting up: one read configures each chip (the ADXL345 only measures once configured).
        foreach (var sensor in _sensors)
        {
            _ = sensor.Read(Start);
        }

        _worldTime = Start - TimeSpan.FromTicks(1);
        AdvanceTo(Start);
    }

    /// <summary>Built-in scenario names (<c>home-flood</c>, <c>pipe-freeze</c>, ...).</summary>
    public static IReadOnlyList<string> AvailableScenarios => Scenario.BuiltInNames;

    /// <summary>Creates the kit for a built-in scenario, starting at <paramref name="clock"/>'s current time.</summary>
    public static SimulatedKit Create(string scenarioName, TimeProvider clock) => Create(Scenario.BuiltIn(scenarioName), clock);

    /// <summary>Creates the kit for a scenario (e.g. one loaded with <see cref="Scenario.Load"/>).</summary>
    public static SimulatedKit Create(Scenario scenario, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        ArgumentNullException.ThrowIfNull(clock);
        return new SimulatedKit(scenario, clock);
    }

    public Scenario Scenario { get; }

    /// <summary><c>home</c> or <c>luggage</c>.</summary>
    public string DeviceKind => Scenario.DeviceKind;

    /// <summary>The home, or the trip's origin.</summary>
    public ScenarioLocation HomeLocation => Scenario.Location;

    public TimeSpan Duration => Scenario.Duration;

    /// <summary>Suggested polling interval.</summary>
    public TimeSpan Step => Scenario.Step;

    public DateTimeOffset Start { get; }

    public DateTimeOffset End => Start + Duration;

    /// <summary>The real drivers, each over its simulated bus. Event sensors implement <see cref="IEventSensor"/>.</summary>
    public IReadOnlyList<ISensor> Sensors => _sensors;

    public SimulatedBme280 Bme280Chip { get; }

    public SimulatedGpioDriver Gpio { get; }

    public SimulatedAdxl345? Accelerometer { get; }

    public SimulatedNmeaStream? GpsStream { get; }

    /// <summary>
    /// Moves the simulated world (and a <see cref="ScenarioClock"/>) to <paramref name="time"/>, applying every
    /// timeline event on the way at its own time.
    /// </summary>
    public void AdvanceTo(DateTimeOffset time)
    {
        lock (_gate)
        {
            if (time < _worldTime)
            {
                throw new ArgumentOutOfRangeException(nameof(time), time, $"The simulated world is at {_worldTime:O} and cannot go back.");
            }

            var due = Scenario.Timeline
                .Where(e => e.Kind is "leak" or "drop")
                .Select(e => (Event: e, At: Start + TimeSpan.FromMinutes(e.AtMinutes)))
                .Where(x => x.At > _worldTime && x.At <= time)
                .OrderBy(x => x.At);
            foreach (var (e, at) in due)
            {
                MoveClock(at);
                ApplyContinuous(at);
                ApplyDiscrete(e, at);
            }

            MoveClock(time);
            ApplyContinuous(time);
            _worldTime = time;
        }
    }

    /// <summary>Temperature (°C), humidity (%RH) and pressure (Pa) the scenario prescribes at a time, noise included.</summary>
    public (double Celsius, double RelativeHumidity, double Pascal) EnvironmentAt(double minutes)
    {
        var env = Scenario.Environment;
        double t = env.TemperatureCelsius, h = env.HumidityPercent, p = env.PressurePascal;
        foreach (var e in Scenario.Timeline.Where(e => e.Kind == "environment" && e.AtMinutes <= minutes).OrderBy(e => e.AtMinutes))
        {
            var fraction = Fraction(e, minutes);
            t += ((e.TemperatureCelsius ?? t) - t) * fraction;
            h += ((e.HumidityPercent ?? h) - h) * fraction;
            p += ((e.PressurePascal ?? p) - p) * fraction;
        }

        // Deterministic noise per whole second of scenario time, so reruns give the same values.
        var random = new Random(unchecked((int)((Scenario.Seed * 1_000_003L) + (long)Math.Floor(minutes * 60))));
        double Noise(double? amplitude) => amplitude is { } a ? ((random.NextDouble() * 2) - 1) * a : 0;
        var noise = env.Noise;
        return (t + Noise(noise?.TemperatureCelsius), Math.Clamp(h + Noise(noise?.HumidityPercent), 0, 100), p + Noise(noise?.PressurePascal));
    }

    /// <summary>Where the scenario puts the GPS at a time, and its fix quality.</summary>
    public (double Latitude, double Longitude, int FixQuality) PositionAt(double minutes)
    {
        double lat = Scenario.Location.Latitude, lon = Scenario.Location.Longitude;
        var fix = 1;
        foreach (var e in Scenario.Timeline.Where(e => e.AtMinutes <= minutes).OrderBy(e => e.AtMinutes))
        {
            if (e.Kind == "move")
            {
                var fraction = Fraction(e, minutes);
                lat += (e.Latitude!.Value - lat) * fraction;
                lon += (e.Longitude!.Value - lon) * fraction;
            }
            else if (e.Kind == "gps-fix")
            {
                fix = e.FixQuality!.Value;
            }
        }

        return (lat, lon, fix);
    }

    private static double Fraction(ScenarioEvent e, double minutes) =>
        e.RampMinutes is > 0 and var ramp ? Math.Min(1, (minutes - e.AtMinutes) / ramp) : 1;

    private double MinutesAt(DateTimeOffset time) => (time - Start).TotalMinutes;

    private void MoveClock(DateTimeOffset time)
    {
        if (_clock is ScenarioClock scenarioClock && time > scenarioClock.GetUtcNow())
        {
            scenarioClock.AdvanceTo(time);
        }
    }

    private void ApplyContinuous(DateTimeOffset time)
    {
        var minutes = MinutesAt(time);
        var (t, h, p) = EnvironmentAt(minutes);
        Bme280Chip.SetEnvironment(t, h, p);
        if (GpsStream is not null)
        {
            var (lat, lon, fix) = PositionAt(minutes);
            GpsStream.SetPosition(lat, lon);
            GpsStream.SetFixQuality(fix);
        }

        // At rest: gravity on Z with a little sensor noise, a few samples per step.
        if (Accelerometer is not null)
        {
            var random = new Random(unchecked((int)((Scenario.Seed * 7_919L) + (long)Math.Floor(minutes * 60))));
            for (var i = 0; i < 4; i++)
            {
                var jitter = new Vector3((float)(random.NextDouble() - 0.5), (float)(random.NextDouble() - 0.5), (float)(random.NextDouble() - 0.5)) * 0.02f;
                Accelerometer.PushSample(Gravity + jitter);
            }
        }
    }

    private void ApplyDiscrete(ScenarioEvent e, DateTimeOffset at)
    {
        switch (e.Kind)
        {
            case "leak":
                var wet = e.Wet ?? true;
                var before = Gpio.Level(LeakPin);
                Gpio.SetInput(LeakPin, wet ? PinValue.Low : PinValue.High);
                if (e.BounceMilliseconds is > 0 and var bounce)
                {
                    MoveClock(at + TimeSpan.FromMilliseconds(bounce));
                    Gpio.SetInput(LeakPin, before);
                }

                break;
            case "drop" when Accelerometer is not null:
                // Free fall: all axes near 0 g for the fall time, then the impact, then rest.
                Accelerometer.Hold(new Vector3(0.02f, -0.01f, 0.03f), TimeSpan.FromMilliseconds(e.FallMilliseconds ?? 0));
                var direction = Vector3.Normalize(new Vector3(0.3f, 0.2f, 0.93f));
                Accelerometer.PushSample(direction * (float)e.PeakG!.Value);
                Accelerometer.Hold(Gravity, TimeSpan.FromMilliseconds(50));
                break;
            default:
                break;
        }
    }

    public void Dispose()
    {
        foreach (var sensor in _sensors)
        {
            sensor.Dispose();
        }

        _gpioController.Dispose();
    }
}
