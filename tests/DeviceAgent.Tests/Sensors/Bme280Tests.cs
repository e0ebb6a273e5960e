using DeviceAgent.Sensors;
using DeviceAgent.Sensors.Bme280;
using Simulators.Devices;

namespace DeviceAgent.Tests.Sensors;

/// <summary>
/// The dotnet/iot BME280 driver (through <see cref="Bme280Sensor"/>) against the register-level
/// simulated chip: a driver nobody here wrote has to find the chip id, the trimming registers and
/// the measurement where the datasheet puts them.
/// </summary>
public sealed class Bme280Tests
{
    // Bosch BMP280 datasheet, §3.12 / Table 16 "Compensation formula example" (the BME280 datasheet
    // §4.2.3 and §8.1 use the same temperature and pressure formulas and trimming layout): with these
    // trimming values, adc_T = 519888 and adc_P = 415148 the floating-point formulas give
    // T = 25.08 °C and p = 100653.27 Pa.
    private static readonly SimulatedBme280.Trimming DatasheetTrimming = SimulatedBme280.Trimming.Typical with
    {
        T1 = 27504,
        T2 = 26435,
        T3 = -1000,
        P1 = 36477,
        P2 = -10685,
        P3 = 3024,
        P4 = 2855,
        P5 = 140,
        P6 = -7,
        P7 = 15500,
        P8 = -14600,
        P9 = 6000,
    };

    [Fact]
    public void Datasheet_example_gives_25_08_degrees_and_100653_pascal_through_the_library_driver()
    {
        using var chip = new SimulatedBme280(trimming: DatasheetTrimming);
        using var sensor = new Bme280Sensor(chip);
        chip.SetRawOverride((519888, 415148, chip.RawFor(25.08, 50, 100_653).AdcH));

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Null(sample.Fault);
        var byName = sample.Readings.ToDictionary(r => r.Name);
        Assert.Equal(25.08, byName["temperature"].Value, 0.005);
        Assert.Equal(100653.27, byName["pressure"].Value, 0.5);
        Assert.Equal(50, byName["humidity"].Value, 0.05);
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
        using var sensor = new Bme280Sensor(chip);
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
    public void Packed_humidity_trimming_decodes_as_the_chip_holds_it()
    {
        // dig_H4 and dig_H5 share register 0xE5 (§4.2.2 Table 16). Only non-negative values: the library
        // does not sign-extend 0xE4/0xE6 as Bosch's reference driver does (docs/sensors-and-simulators.md).
        var trimming = SimulatedBme280.Trimming.Typical with { H4 = 0x155, H5 = 0x03A, H6 = -7, H2 = 380 };
        using var chip = new SimulatedBme280(trimming: trimming);
        using var sensor = new Bme280Sensor(chip);
        chip.SetEnvironment(22, 61.5, 100_000);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Null(sample.Fault);
        Assert.Equal(61.5, sample.Readings.Single(r => r.Name == "humidity").Value, 0.05);
    }

    [Fact]
    public void The_chip_measures_continuously_and_each_read_sees_the_current_environment()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280Sensor(chip);
        chip.SetEnvironment(20, 40, 100000);
        Assert.Equal(20, sensor.Read(DateTimeOffset.UnixEpoch).Readings[0].Value, 0.011);
        chip.SetEnvironment(5, 40, 100000);
        Assert.Equal(5, sensor.Read(DateTimeOffset.UnixEpoch).Readings[0].Value, 0.011);
    }

    [Fact]
    public void Bmp280_chip_id_is_a_fault_not_a_reading()
    {
        using var chip = new SimulatedBme280 { ChipId = 0x58 };
        using var sensor = new Bme280Sensor(chip);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(sample.Readings);
        // The library's message names both ids in decimal: 96 = 0x60 (BME280), 88 = 0x58 (BMP280).
        Assert.Contains("Unable to find a chip with id 96. Found one with id 88", sample.Fault, StringComparison.Ordinal);
        Assert.False(sensor.Initialised);
    }

    [Fact]
    public void Bus_error_is_a_fault_and_the_next_read_identifies_the_chip_again()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280Sensor(chip);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
        chip.FailNextTransfers(1);

        var failed = sensor.Read(DateTimeOffset.UnixEpoch);
        Assert.False(sensor.Initialised);
        var recovered = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(failed.Readings);
        Assert.Contains("I2C bus error", failed.Fault, StringComparison.Ordinal);
        Assert.Contains("0x76", failed.Fault, StringComparison.Ordinal);
        Assert.Null(recovered.Fault);
        Assert.Equal(3, recovered.Readings.Count);
    }

    [Fact]
    public void Bus_error_while_the_library_reads_the_trimming_is_a_fault()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280Sensor(chip);
        // The library's chip-id read (pointer write, read) succeeds, then its first trimming read fails.
        chip.FailTransfersAfter(passing: 3, failing: 1);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Contains("Error 121", sample.Fault, StringComparison.Ordinal);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
    }

    [Fact]
    public void Disconnected_chip_faults_on_first_read()
    {
        using var chip = new SimulatedBme280 { Disconnected = true };
        using var sensor = new Bme280Sensor(chip);
        Assert.Contains("Error 121", sensor.Read(DateTimeOffset.UnixEpoch).Fault, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(100.0, 101325.0, "implausible temperature")]
    [InlineData(-45.0, 101325.0, "implausible temperature")]
    [InlineData(20.0, 20000.0, "implausible pressure")]
    public void Implausible_values_are_faults_not_readings(double celsius, double pascal, string reason)
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280Sensor(chip);
        chip.SetEnvironment(celsius, 50, pascal);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(sample.Readings);
        Assert.Contains(reason, sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void A_skipped_measurement_is_a_fault_although_the_library_turns_it_into_a_number()
    {
        using var chip = new SimulatedBme280();
        using var sensor = new Bme280Sensor(chip);
        Assert.Null(sensor.Read(DateTimeOffset.UnixEpoch).Fault);
        // Another bus master (or a brown-out) sets osrs_t = 000 in forced mode: the temperature
        // register keeps its reset value 0x80000 (§5.4.5, Table 20).
        chip.Write([0xF4, 0b000_001_01]);

        var sample = sensor.Read(DateTimeOffset.UnixEpoch);

        Assert.Empty(sample.Readings);
        Assert.Contains("skipped", sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void Sensor_implements_the_agent_seam()
    {
        using var chip = new SimulatedBme280();
        ISensor sensor = new Bme280Sensor(chip, id: "attic");
        Assert.Equal("attic", sensor.Id);
        Assert.Equal("attic", sensor.Read(DateTimeOffset.UnixEpoch).SensorId);
        sensor.Dispose();
    }
}
