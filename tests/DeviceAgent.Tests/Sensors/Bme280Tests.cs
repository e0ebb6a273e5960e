using DeviceAgent.Sensors;
using DeviceAgent.Sensors.Bme280;
using Simulators.Devices;

namespace DeviceAgent.Tests.Sensors;

public sealed class Bme280Tests
{
    // Bosch BMP280 datasheet, Table 16 "Compensation formula example": the BME280 uses the same
    // temperature and pressure formulas (BME280 datasheet §4.2.3), so the same inputs must give
    // t_fine = 128422, T = 25.08 °C and p = 100653 Pa.
    private static readonly Bme280Calibration DatasheetExample = new(
        27504, 26435, -1000,
        36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
        75, 362, 0, 313, 50, 30);

    [Fact]
    public void Datasheet_example_temperature_is_25_08_degrees()
    {
        var (tFine, centiCelsius) = DatasheetExample.CompensateTemperature(519888);
        Assert.Equal(128422, tFine);
        Assert.Equal(2508, centiCelsius);
    }

    [Fact]
    public void Datasheet_example_pressure_is_100653_pascal()
    {
        var (tFine, _) = DatasheetExample.CompensateTemperature(519888);
        var pascal = DatasheetExample.CompensatePressureQ24_8(415148, tFine) / 256.0;
        Assert.InRange(pascal, 100652.5, 100654.0);
    }

    [Fact]
    public void Calibration_registers_decode_to_the_trimming_the_chip_holds()
    {
        var trimming = SimulatedBme280.Trimming.Typical with { H4 = -300, H5 = -1234, H6 = -7, H2 = -12 };
        using var chip = new SimulatedBme280(trimming: trimming);
        using var sensor = new Bme280(chip);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
        var c = sensor.Calibration!;
        Assert.Equal((trimming.T1, trimming.T2, trimming.T3), (c.DigT1, c.DigT2, c.DigT3));
        Assert.Equal((trimming.P1, trimming.P5, trimming.P9), (c.DigP1, c.DigP5, c.DigP9));
        Assert.Equal((trimming.H1, trimming.H2, trimming.H3, trimming.H4, trimming.H5, trimming.H6), (c.DigH1, c.DigH2, c.DigH3, c.DigH4, c.DigH5, c.DigH6));
    }

    [Theory]
    [InlineData(21.0, 45.0, 101325.0)]
    [InlineData(-12.34, 80.5, 95000.0)]
    [InlineData(0.0, 10.0, 70000.0)]
    [InlineData(-4.5, 99.0, 103500.0)]
    [InlineData(84.0, 3.0, 108000.0)]
    public void Reading_round_trips_the_simulated_environment(double celsius, double humidity, double pascal)
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280(chip);
        chip.SetEnvironment(celsius, humidity, pascal);
        var now = DateTimeOffset.UnixEpoch.AddDays(3);

        var sample = sensor.Read(now);

        Assert.Null(sample.Fault);
        var byName = sample.Readings.ToDictionary(r => r.Name);
        Assert.Equal(celsius, byName["temperature"].Value, 0.011);
        Assert.Equal(humidity, byName["humidity"].Value, 0.05);
        Assert.Equal(pascal, byName["pressure"].Value, 1.0);
        Assert.Equal(("Cel", "%RH", "Pa"), (byName["temperature"].Unit, byName["humidity"].Unit, byName["pressure"].Unit));
        Assert.All(sample.Readings, r => Assert.Equal(now, r.Time));
    }

    [Fact]
    public void Every_read_triggers_a_forced_measurement()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280(chip);
        chip.SetEnvironment(20, 40, 100000);
        Assert.Equal(20, sensor.Read(DateTimeOffset.UnixEpoch).Readings[0].Value, 0.011);
        chip.SetEnvironment(5, 40, 100000);
        Assert.Equal(5, sensor.Read(DateTimeOffset.UnixEpoch).Readings[0].Value, 0.011);
        Assert.Equal(2, chip.Measurements);
    }

    [Fact]
    public void Bmp280_chip_id_is_a_fault_not_a_reading()
    {
        using var chip = new SimulatedBme280 { ChipId = 0x58 };
        using var sensor = new Bme280(chip);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(sample.Readings);
        Assert.Contains("unexpected chip id 0x58", sample.Fault, StringComparison.Ordinal);
        Assert.Contains("BMP280", sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void Bus_error_is_a_fault_and_the_next_read_recovers()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280(chip);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
        chip.FailNextTransfers(1);

        var failed = sensor.Read(DateTimeOffset.UnixEpoch);
        var recovered = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(failed.Readings);
        Assert.Contains("I2C bus error", failed.Fault, StringComparison.Ordinal);
        Assert.Contains("0x76", failed.Fault, StringComparison.Ordinal);
        Assert.Null(recovered.Fault);
        Assert.Equal(3, recovered.Readings.Count);
    }

    [Fact]
    public void Disconnected_chip_faults_on_first_read()
    {
        using var chip = new SimulatedBme280 { Disconnected = true };
        using var sensor = new Bme280(chip);
        Assert.Contains("Error 121", sensor.Read(DateTimeOffset.UnixEpoch).Fault, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(100.0, 101325.0, "implausible temperature")]
    [InlineData(-45.0, 101325.0, "implausible temperature")]
    [InlineData(20.0, 20000.0, "implausible pressure")]
    public void Implausible_values_are_faults_not_readings(double celsius, double pascal, string reason)
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280(chip);
        chip.SetEnvironment(celsius, 50, pascal);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(sample.Readings);
        Assert.Contains(reason, sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void Measurement_settings_are_rewritten_before_every_read()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280(chip);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
        // Another bus master (or a brown-out) sets osrs_t = 000: the temperature register holds 0x80000.
        chip.Write([0xF4, 0b000_001_01]);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Null(sample.Fault); // the driver rewrites ctrl_meas before each measurement
        Assert.Equal(3, sample.Readings.Count);
    }

    [Fact]
    public void Skipping_a_channel_is_refused_at_construction()
    {
        using var chip = new SimulatedBme280();
        Assert.Throws<ArgumentOutOfRangeException>(() => new Bme280(chip, oversampling: Bme280Oversampling.Skipped));
    }

    [Fact]
    public void Sensor_implements_the_agent_seam()
    {
        using var chip = new SimulatedBme280();
        ISensor sensor = new Bme280(chip, id: "attic");
        Assert.Equal("attic", sensor.Id);
        Assert.Equal("attic", sensor.Read(DateTimeOffset.UnixEpoch).SensorId);
        sensor.Dispose();
    }
}

public sealed class Bme280ConversionTimeTests
{
    [Fact]
    public void Driver_waits_while_the_chip_reports_measuring()
    {
        using var chip = new SimulatedBme280 { BusyStatusReads = 3 };
        using var sensor = new Bme280(chip);
        chip.SetEnvironment(19, 50, 100_000);
        Assert.Equal(19, sensor.Read(DateTimeOffset.UnixEpoch).Readings[0].Value, 0.011);
    }

    [Fact]
    public void Chip_stuck_measuring_is_a_fault()
    {
        using var chip = new SimulatedBme280 { BusyStatusReads = 10_000 };
        using var sensor = new Bme280(chip);
        var sample = sensor.Read(DateTimeOffset.UnixEpoch);
        Assert.Empty(sample.Readings);
        Assert.Contains("did not complete", sample.Fault, StringComparison.Ordinal);
    }
}
