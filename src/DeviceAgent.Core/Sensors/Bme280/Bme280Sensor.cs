using System.Device.I2c;
using System.Globalization;
using ShareVault.Evidence;
using Bmxx80 = Iot.Device.Bmxx80;

namespace DeviceAgent.Sensors.Bme280;

/// <summary>
/// Bosch BME280 temperature / humidity / pressure sensor over I2C, read through the dotnet/iot
/// driver (<see cref="Bmxx80.Bme280"/>, Iot.Device.Bindings): it checks the chip id, reads the
/// trimming parameters, resets the chip, sets x1 oversampling with the filter off (the oversampling
/// of the datasheet's "weather monitoring" setting, §3.5.1) and compensates with the floating-point
/// formulas of §8.1. The chip runs in normal mode with a 1 s standby (§3.3.4): in forced mode the
/// library sleeps the thread for the measurement time on every read, which the agent (and a
/// two-day scenario on a virtual clock) should not pay once a poll; a reading is then at most 1 s
/// old. What this class adds is what the agent needs around it: faults instead of exceptions, a
/// re-initialisation after a bus error, the operating-range plausibility checks and the detection
/// of a skipped measurement, which the library reports as a number.
/// </summary>
public sealed class Bme280Sensor : ISensor
{
    /// <summary>I2C address with SDO tied to GND (§6.2); the library's <c>SecondaryI2cAddress</c>.</summary>
    public const int DefaultI2cAddress = Bmxx80.Bmx280Base.SecondaryI2cAddress;

    /// <summary>I2C address with SDO tied to VDDIO (§6.2).</summary>
    public const int SecondaryI2cAddress = Bmxx80.Bmx280Base.DefaultI2cAddress;

    /// <summary>Operating range of the device (§1, Table 1): -40..+85 °C, 300..1100 hPa.</summary>
    public const double MinCelsius = -40, MaxCelsius = 85, MinPascal = 30_000, MaxPascal = 110_000;

    // The burst-read block press_msb..hum_lsb (§4, "data readout"; §5.4.7-5.4.9).
    private const byte PressMsb = 0xF7;

    // A skipped measurement leaves the output registers at their reset values 0x80000 (temperature,
    // pressure) and 0x8000 (humidity) (§5.3, Table 18). The library turns them into numbers.
    private const int SkippedTp = 0x80000;
    private const int SkippedH = 0x8000;

    private readonly I2cDevice _device;
    private Bmxx80.Bme280? _driver;

    /// <param name="device">The I2C device at 0x76 or 0x77; owned by this sensor and disposed with it.</param>
    /// <param name="id">Sensor id in the kit.</param>
    public Bme280Sensor(I2cDevice device, string id = "bme280")
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        _device = device;
        Id = id;
    }

    public string Id { get; }

    /// <summary>Whether the library driver is initialised (chip identified, trimming read).</summary>
    public bool Initialised => _driver is not null;

    public SensorSample Read(DateTimeOffset now)
    {
        try
        {
            // The library identifies the chip and reads its trimming in its constructor; an unknown
            // chip id is an IOException ("Unable to find a chip with id 96. Found one with id 88").
            _driver ??= Initialise();
            var result = _driver.Read();
            if (SkippedMeasurement())
            {
                return SensorSample.Faulted(Id, "BME280 returned the reset value 0x80000/0x8000: the measurement was skipped");
            }

            if (result.Temperature is not { } temperature || result.Pressure is not { } pressure || result.Humidity is not { } humidity)
            {
                return SensorSample.Faulted(Id, "BME280 returned no value for a channel (oversampling set to skipped)");
            }

            var celsius = temperature.DegreesCelsius;
            var pascal = pressure.Pascals;
            if (!double.IsFinite(celsius) || celsius is < MinCelsius or > MaxCelsius)
            {
                return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                    $"implausible temperature {celsius:F2} °C (BME280 operating range {MinCelsius}..{MaxCelsius} °C)"));
            }

            if (!double.IsFinite(pascal) || pascal is < MinPascal or > MaxPascal)
            {
                return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                    $"implausible pressure {pascal:F0} Pa (BME280 operating range {MinPascal}..{MaxPascal} Pa)"));
            }

            return new SensorSample(Id,
            [
                new Reading("temperature", "Cel", Math.Round(celsius, 2), now),
                new Reading("humidity", "%RH", Math.Round(humidity.Percent, 3), now),
                new Reading("pressure", "Pa", Math.Round(pascal, 2), now),
            ]);
        }
        catch (IOException ex)
        {
            // Identify the chip and read its trimming again after a bus error: it may have been
            // power-cycled or replaced. The library object is dropped, not disposed (it would dispose
            // the I2C device, which this sensor owns).
            _driver = null;
            return SensorSample.Faulted(Id, $"I2C bus error talking to BME280 at 0x{_device.ConnectionSettings.DeviceAddress:X2}: {ex.Message}");
        }
    }

    private Bmxx80.Bme280 Initialise()
    {
        var driver = new Bmxx80.Bme280(_device);
        // config (t_sb) is written in sleep mode, where the library's reset left the chip (§5.4.6).
        driver.StandbyTime = Bmxx80.StandbyTime.Ms1000;
        driver.SetPowerMode(Bmxx80.PowerMode.Bmx280PowerMode.Normal);
        // The first conversion completes within t_measure (§9.1); until then the data registers hold their reset values.
        Thread.Sleep(driver.GetMeasurementDuration());
        return driver;
    }

    // The library reads each channel with its own transfer and never looks at the raw value; one
    // burst read of 0xF7..0xFE after its read shows whether the chip skipped the measurement.
    private bool SkippedMeasurement()
    {
        Span<byte> raw = stackalloc byte[8];
        _device.WriteRead([PressMsb], raw);
        var adcP = (raw[0] << 12) | (raw[1] << 4) | (raw[2] >> 4);
        var adcT = (raw[3] << 12) | (raw[4] << 4) | (raw[5] >> 4);
        var adcH = (raw[6] << 8) | raw[7];
        return adcT == SkippedTp || adcP == SkippedTp || adcH == SkippedH;
    }

    public void Dispose() => _device.Dispose();
}
