using System.Device.Gpio;
using System.Numerics;
using DeviceAgent.Sensors;
using DeviceAgent.Sensors.Adxl345;
using Simulators;
using Simulators.Buses;
using Simulators.Devices;

namespace DeviceAgent.Tests.Sensors;

/// <summary>
/// The dotnet/iot ADXL345 driver (SPI, through <see cref="Adxl345Sensor"/>, which adds the shock and
/// free-fall set-up the library lacks) against the register-level simulated chip on a simulated SPI bus.
/// </summary>
public sealed class Adxl345Tests : IDisposable
{
    private static readonly Vector3 Rest = new(0, 0, 1);
    private readonly ScenarioClock _clock = new(new DateTimeOffset(2026, 5, 2, 10, 0, 0, TimeSpan.Zero));
    private readonly SimulatedAdxl345 _chip = new();
    private readonly SimulatedGpioDriver _gpio = new();
    private readonly GpioController _controller;
    private readonly Adxl345Sensor _sensor;
    private readonly List<SensorSample> _events = [];

    public Adxl345Tests()
    {
        _controller = new GpioController(_gpio);
        _chip.ConnectInterrupts(_gpio, 23, 24);
        _sensor = new Adxl345Sensor(_chip, _clock, 8, _controller, 23, 24);
        _sensor.Triggered += (_, s) => _events.Add(s);
        Assert.Null(_sensor.Read(_clock.GetUtcNow()).Fault); // configures the chip
    }

    public void Dispose()
    {
        _sensor.Dispose();
        _controller.Dispose();
    }

    private static double Value(SensorSample sample, string name) => sample.Readings.Single(r => r.Name == name).Value;

    private byte Register(byte address)
    {
        Span<byte> read = stackalloc byte[2];
        _chip.TransferFullDuplex([(byte)(address | 0x80), 0], read); // SPI read: bit 7 set
        return read[1];
    }

    [Fact]
    public void Library_and_event_setup_configure_16g_at_100Hz_in_measurement_mode()
    {
        Assert.Equal(0x03, Register(0x31));   // DATA_FORMAT as the library writes it: ±16 g, 10-bit (32 LSB/g), 4-wire SPI
        Assert.Equal(0x40, Register(0x2E) & 0x40); // INT_ENABLE: single tap
        Assert.Equal(0x04, Register(0x2F));   // INT_MAP: free fall on INT2
        Assert.Equal(0x0A, Register(0x2C));   // BW_RATE: 100 Hz
        Assert.Equal(0x08, Register(0x2D));   // POWER_CTL: Measure
        Assert.Equal(128, Register(0x1D));    // THRESH_TAP: 8 g / 62.5 mg
        Assert.Equal(0xC0, Register(0x38) & 0xC0); // FIFO_CTL: trigger mode
        Assert.True(_chip.Measuring);
    }

    [Fact]
    public void At_rest_the_peak_is_one_g_and_no_free_fall()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        var sample = _sensor.Read(_clock.GetUtcNow());
        Assert.Equal(9.80665, Value(sample, "shock"), 0.05);
        Assert.Equal(0, Value(sample, "free_fall"));
        Assert.Equal("m/s2", sample.Readings.Single(r => r.Name == "shock").Unit);
        Assert.Empty(_events);
    }

    [Fact]
    public void Shock_above_8g_raises_an_event_with_the_peak_in_m_s2()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        _chip.PushSample(new Vector3(0, 0, 12));
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));

        var shock = Assert.Single(_events);
        Assert.Equal(12 * 9.80665, Value(shock, "shock"), 0.1);
        Assert.True(Value(shock, "shock") > 78.5);
    }

    [Fact]
    public void Shock_survives_in_the_trigger_mode_fifo_until_polled_without_interrupt_wiring()
    {
        using var chip = new SimulatedAdxl345();
        using var sensor = new Adxl345Sensor(chip, _clock);
        Assert.Null(sensor.Read(_clock.GetUtcNow()).Fault);
        chip.Hold(Rest, TimeSpan.FromMilliseconds(200));
        // THRESH_TAP applies per axis: Z alone exceeds 8 g here.
        var impact = new Vector3(3, 2, 10);
        chip.PushSample(impact);
        chip.Hold(Rest, TimeSpan.FromSeconds(5)); // far more than the 32-entry FIFO holds

        var polled = sensor.Read(_clock.GetUtcNow());
        var after = sensor.Read(_clock.GetUtcNow());

        Assert.Equal(impact.Length() * 9.80665, Value(polled, "shock"), 0.2);
        Assert.Equal(9.80665, Value(after, "shock"), 0.05); // the FIFO was re-armed
    }

    [Fact]
    public void Bump_below_the_threshold_is_no_shock_event()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        _chip.PushSample(new Vector3(0, 0, 5));
        Assert.Empty(_events);
        Assert.Equal(5 * 9.80665, Value(_sensor.Read(_clock.GetUtcNow()), "shock"), 0.1);
    }

    [Fact]
    public void Free_fall_longer_than_TIME_FF_is_detected()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        _chip.Hold(Vector3.Zero, TimeSpan.FromMilliseconds(400));

        var fall = Assert.Single(_events);
        Assert.Equal(1, Value(fall, "free_fall"));
        Assert.Equal(0, Value(_sensor.Read(_clock.GetUtcNow()), "free_fall")); // latched once, cleared by the read
    }

    [Fact]
    public void Free_fall_shorter_than_TIME_FF_is_ignored()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        _chip.Hold(Vector3.Zero, TimeSpan.FromMilliseconds(50));
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        Assert.Empty(_events);
        Assert.Equal(0, Value(_sensor.Read(_clock.GetUtcNow()), "free_fall"));
    }

    [Fact]
    public void Drop_gives_free_fall_then_shock()
    {
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(100));
        _chip.Hold(Vector3.Zero, TimeSpan.FromMilliseconds(400));
        _chip.PushSample(new Vector3(2, 1, 11));
        _chip.Hold(Rest, TimeSpan.FromMilliseconds(50));

        Assert.Equal(2, _events.Count);
        Assert.Equal(1, Value(_events[0], "free_fall"));
        Assert.True(Value(_events[1], "shock") > 78.5);
    }

    [Fact]
    public void Wrong_device_id_is_a_fault()
    {
        using var chip = new SimulatedAdxl345 { DeviceId = 0x68 };
        using var sensor = new Adxl345Sensor(chip, _clock);
        var sample = sensor.Read(_clock.GetUtcNow());
        Assert.Empty(sample.Readings);
        Assert.Contains("unexpected device id 0x68", sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void Bus_error_is_a_fault_and_the_chip_is_reconfigured_after_it()
    {
        _chip.FailNextTransfers(1);
        var failed = _sensor.Read(_clock.GetUtcNow());
        Assert.Contains("SPI error", failed.Fault, StringComparison.Ordinal);
        Assert.Empty(failed.Readings);
        var transfers = _chip.Transfers;
        Assert.Null(_sensor.Read(_clock.GetUtcNow()).Fault);
        Assert.True(_chip.Transfers - transfers > 10, "a reconfiguration writes the setup registers again");
    }

    [Fact]
    public void Threshold_outside_THRESH_TAP_range_is_refused()
    {
        using var chip = new SimulatedAdxl345();
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adxl345Sensor(chip, _clock, shockThresholdG: 17));
    }
}
