using System.Device.I2c;
using System.Globalization;
using ShareVault.Evidence;

namespace DeviceAgent.Sensors.Bme280;

/// <summary>
/// Bosch BME280 temperature / humidity / pressure sensor over I2C (datasheet rev 1.6).
/// Uses forced mode with x1 oversampling and the IIR filter off, the datasheet's recommended
/// "weather monitoring" setting (§3.5.1): one measurement per read, the chip sleeps in between.
/// </summary>
public sealed class Bme280 : ISensor
{
    /// <summary>I2C address with SDO tied to GND (§6.2).</summary>
    public const int DefaultI2cAddress = 0x76;

    /// <summary>I2C address with SDO tied to VDDIO (§6.2).</summary>
    public const int SecondaryI2cAddress = 0x77;

    /// <summary>Value of the id register on a BME280 (§5.4.1).</summary>
    public const byte ExpectedChipId = 0x60;

    /// <summary>Operating range of the device (§1, Table 1): -40..+85 °C, 300..1100 hPa.</summary>
    public const double MinCelsius = -40, MaxCelsius = 85, MinPascal = 30_000, MaxPascal = 110_000;

    // A skipped measurement leaves the output register at its reset value 0x80000 (temperature,
    // pressure) or 0x8000 (humidity) (§5.4.7-5.4.9, Table 18 reset states).
    private const int SkippedTp = 0x80000;
    private const int SkippedH = 0x8000;
    private const byte ModeForced = 0b01;
    private const byte StatusMeasuring = 1 << 3;
    private const byte StatusImUpdate = 1 << 0;

    // §9.1: t_measure,max = 1.25 + 2.3*osrs_t + (2.3*osrs_p + 0.575) + (2.3*osrs_h + 0.575) ms = 9.3 ms at x1.
    // Poll the measuring bit for up to ~5x that before calling the chip stuck.
    private const int MaxStatusPolls = 50;

    private readonly I2cDevice _device;
    private readonly Bme280Oversampling _oversampling;
    private Bme280Calibration? _calibration;

    /// <param name="device">The I2C device at 0x76 or 0x77; owned by this driver and disposed with it.</param>
    /// <param name="id">Sensor id in the kit.</param>
    /// <param name="oversampling">Oversampling for all three channels (x1 by default, §3.5.1).</param>
    public Bme280(I2cDevice device, string id = "bme280", Bme280Oversampling oversampling = Bme280Oversampling.X1)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        if (oversampling == Bme280Oversampling.Skipped || !Enum.IsDefined(oversampling))
        {
            throw new ArgumentOutOfRangeException(nameof(oversampling), oversampling, "Oversampling must be X1..X16; skipping a channel would drop a reading.");
        }

        _device = device;
        _oversampling = oversampling;
        Id = id;
    }

    public string Id { get; }

    /// <summary>The trimming parameters read at initialisation, or null before the first successful read.</summary>
    public Bme280Calibration? Calibration => _calibration;

    public SensorSample Read(DateTimeOffset now)
    {
        try
        {
            if (_calibration is null)
            {
                var fault = Initialise();
                if (fault is not null)
                {
                    return SensorSample.Faulted(Id, fault);
                }
            }

            return Measure(_calibration!, now);
        }
        catch (IOException ex)
        {
            // Re-read the chip id and calibration after a bus error: the chip may have been power-cycled.
            _calibration = null;
            return SensorSample.Faulted(Id, $"I2C bus error talking to BME280 at 0x{_device.ConnectionSettings.DeviceAddress:X2}: {ex.Message}");
        }
    }

    private string? Initialise()
    {
        var chipId = ReadRegister(Bme280Register.ChipId);
        if (chipId != ExpectedChipId)
        {
            var known = chipId switch
            {
                0x56 or 0x57 or 0x58 => " (a BMP280: no humidity channel)",
                0x61 => " (a BME680)",
                _ => string.Empty,
            };
            return string.Create(CultureInfo.InvariantCulture,
                $"unexpected chip id 0x{chipId:X2}{known} in register 0xD0 at I2C 0x{_device.ConnectionSettings.DeviceAddress:X2}; a BME280 reports 0x{ExpectedChipId:X2}");
        }

        // Wait until the NVM data have been copied to the image registers (status.im_update, §5.4.4).
        if (!PollStatusClear(StatusImUpdate))
        {
            return "BME280 kept status.im_update set: calibration data never became readable";
        }

        Span<byte> tp = stackalloc byte[Bme280Calibration.TpBlockLength];
        Span<byte> h = stackalloc byte[Bme280Calibration.HumidityBlockLength];
        ReadBlock(Bme280Register.CalibrationTp, tp);
        ReadBlock(Bme280Register.CalibrationH2, h);
        var calibration = Bme280Calibration.Parse(tp, h);
        if (calibration.DigT1 == 0 || calibration.DigP1 == 0)
        {
            return "BME280 calibration is blank (dig_T1 or dig_P1 is 0): NVM not readable";
        }

        // config may only be written in sleep mode (§5.4.6); the chip is in sleep mode after power-on
        // and returns to it after each forced measurement (§3.3.2). Filter off, t_sb unused in forced mode.
        WriteRegister(Bme280Register.Config, 0x00);
        _calibration = calibration;
        return null;
    }

    private SensorSample Measure(Bme280Calibration calibration, DateTimeOffset now)
    {
        var osr = (byte)_oversampling;

        // ctrl_hum first: it only takes effect after the following ctrl_meas write (§5.4.3).
        WriteRegister(Bme280Register.CtrlHum, osr);
        WriteRegister(Bme280Register.CtrlMeas, (byte)((osr << 5) | (osr << 2) | ModeForced));
        if (!PollStatusClear(StatusMeasuring))
        {
            return SensorSample.Faulted(Id, "BME280 measurement did not complete (status.measuring stayed set)");
        }

        // Burst read 0xF7..0xFE so that all values come from the same measurement (§4, data readout).
        Span<byte> raw = stackalloc byte[8];
        ReadBlock(Bme280Register.PressMsb, raw);
        var adcP = (raw[0] << 12) | (raw[1] << 4) | (raw[2] >> 4);
        var adcT = (raw[3] << 12) | (raw[4] << 4) | (raw[5] >> 4);
        var adcH = (raw[6] << 8) | raw[7];
        if (adcT == SkippedTp || adcP == SkippedTp || adcH == SkippedH)
        {
            return SensorSample.Faulted(Id, "BME280 returned the reset value 0x80000/0x8000: the measurement was skipped");
        }

        var (tFine, centiCelsius) = calibration.CompensateTemperature(adcT);
        var celsius = centiCelsius / 100.0;
        var pascal = calibration.CompensatePressureQ24_8(adcP, tFine) / 256.0;
        var relativeHumidity = calibration.CompensateHumidityQ22_10(adcH, tFine) / 1024.0;

        if (celsius is < MinCelsius or > MaxCelsius)
        {
            return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                $"implausible temperature {celsius:F2} °C (BME280 operating range {MinCelsius}..{MaxCelsius} °C)"));
        }

        if (pascal is < MinPascal or > MaxPascal)
        {
            return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                $"implausible pressure {pascal:F0} Pa (BME280 operating range {MinPascal}..{MaxPascal} Pa)"));
        }

        return new SensorSample(Id,
        [
            new Reading("temperature", "Cel", celsius, now),
            new Reading("humidity", "%RH", relativeHumidity, now),
            new Reading("pressure", "Pa", pascal, now),
        ]);
    }

    private bool PollStatusClear(byte mask)
    {
        for (var i = 0; i < MaxStatusPolls; i++)
        {
            if ((ReadRegister(Bme280Register.Status) & mask) == 0)
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }

    private byte ReadRegister(Bme280Register register)
    {
        Span<byte> value = stackalloc byte[1];
        ReadBlock(register, value);
        return value[0];
    }

    private void ReadBlock(Bme280Register start, Span<byte> destination)
    {
        // I2C read: write the register address, repeated start, read with auto-increment (§6.2.2).
        ReadOnlySpan<byte> address = [(byte)start];
        _device.WriteRead(address, destination);
    }

    // I2C write: register address followed by its data byte (§6.2.1).
    private void WriteRegister(Bme280Register register, byte value) => _device.Write([(byte)register, value]);

    public void Dispose() => _device.Dispose();
}
