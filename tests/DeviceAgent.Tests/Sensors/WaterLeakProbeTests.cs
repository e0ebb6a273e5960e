using System.Device.Gpio;
using DeviceAgent.Sensors;
using DeviceAgent.Sensors.WaterLeak;
using Simulators;
using Simulators.Buses;

namespace DeviceAgent.Tests.Sensors;

public sealed class WaterLeakProbeTests : IDisposable
{
    private const int Pin = 17;
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(200);
    private readonly ScenarioClock _clock = new(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
    private readonly SimulatedGpioDriver _gpio = new();
    private readonly GpioController _controller;
    private readonly WaterLeakProbe _probe;
    private readonly List<SensorSample> _events = [];

    public WaterLeakProbeTests()
    {
        _gpio.SetInput(Pin, PinValue.High); // dry
        _controller = new GpioController(_gpio);
        _probe = new WaterLeakProbe(_controller, Pin, Debounce, _clock);
        _probe.Triggered += (_, sample) => _events.Add(sample);
    }

    public void Dispose()
    {
        _probe.Dispose();
        _controller.Dispose();
    }

    private double Leak() => _probe.Read(_clock.GetUtcNow()).Readings.Single(r => r.Name == "water_leak").Value;

    [Fact]
    public void Dry_probe_reads_water_leak_0()
    {
        Assert.Equal(0, Leak());
        Assert.Empty(_events);
    }

    [Fact]
    public void Bounce_shorter_than_the_debounce_time_does_not_trigger()
    {
        _gpio.SetInput(Pin, PinValue.Low);
        _clock.Advance(TimeSpan.FromMilliseconds(50));
        _gpio.SetInput(Pin, PinValue.High);
        _clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Empty(_events);
        Assert.Equal(0, Leak());
    }

    [Fact]
    public void Chattering_contacts_count_only_once_stable()
    {
        var start = _clock.GetUtcNow();
        for (var i = 0; i < 6; i++)
        {
            _gpio.SetInput(Pin, i % 2 == 0 ? PinValue.Low : PinValue.High);
            _clock.Advance(TimeSpan.FromMilliseconds(120));
        }

        _gpio.SetInput(Pin, PinValue.Low);
        _clock.Advance(TimeSpan.FromMilliseconds(150));
        Assert.Empty(_events); // still inside the debounce window of the last edge

        _clock.Advance(TimeSpan.FromMilliseconds(100));
        var sample = Assert.Single(_events);
        Assert.Equal(1, sample.Readings.Single().Value);
        Assert.Equal(start + TimeSpan.FromMilliseconds((6 * 120) + 200), sample.Readings.Single().Time);
    }

    [Fact]
    public void Water_held_past_the_debounce_time_triggers_once_and_reads_1()
    {
        _gpio.SetInput(Pin, PinValue.Low);
        _clock.Advance(TimeSpan.FromMinutes(10));

        var sample = Assert.Single(_events);
        Assert.Equal("leak-probe", sample.SensorId);
        Assert.Equal(new[] { ("water_leak", (string?)null, 1.0) }, sample.Readings.Select(r => (r.Name, r.Unit, r.Value)));
        Assert.Equal(1, Leak());
    }

    [Fact]
    public void Drying_out_triggers_water_leak_0()
    {
        _gpio.SetInput(Pin, PinValue.Low);
        _clock.Advance(TimeSpan.FromSeconds(1));
        _gpio.SetInput(Pin, PinValue.High);
        _clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(new[] { 1.0, 0.0 }, _events.Select(e => e.Readings.Single().Value));
        Assert.Equal(0, Leak());
    }

    [Fact]
    public void Gpio_error_is_a_fault_and_a_missed_change_is_picked_up_afterwards()
    {
        _gpio.Faulted = true;
        var sample = _probe.Read(_clock.GetUtcNow());
        Assert.Empty(sample.Readings);
        Assert.Contains("GPIO error reading leak probe pin 17", sample.Fault, StringComparison.Ordinal);

        _gpio.SetInput(Pin, PinValue.Low);
        _clock.Advance(TimeSpan.FromSeconds(1)); // the debounce read fails too: no event
        Assert.Empty(_events);

        _gpio.Faulted = false;
        Assert.Equal(0, Leak()); // not yet: the missed change must pass the debounce first
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, Leak());
        Assert.Equal(1, Assert.Single(_events).Readings.Single().Value);
    }

    [Fact]
    public void Active_high_probe_is_supported()
    {
        using var gpio = new SimulatedGpioDriver();
        using var controller = new GpioController(gpio);
        using var probe = new WaterLeakProbe(controller, 22, Debounce, _clock, wetLevel: PinValue.High, id: "sump");
        Assert.Equal(0, probe.Read(_clock.GetUtcNow()).Readings.Single().Value); // pull-down holds it low
        gpio.SetInput(22, PinValue.High);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, probe.Read(_clock.GetUtcNow()).Readings.Single().Value);
    }

    [Fact]
    public void Dispose_releases_the_pin_and_its_callback()
    {
        using var gpio = new SimulatedGpioDriver();
        using var controller = new GpioController(gpio);
        var probe = new WaterLeakProbe(controller, 5, Debounce, _clock);
        Assert.Equal(1, gpio.CallbackCount(5));
        probe.Dispose();
        Assert.Equal(0, gpio.CallbackCount(5));
        Assert.False(controller.IsPinOpen(5));
        Assert.Throws<ObjectDisposedException>(() => probe.Read(_clock.GetUtcNow()));
    }
}
