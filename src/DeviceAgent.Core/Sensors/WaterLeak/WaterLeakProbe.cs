using System.Device.Gpio;
using ShareVault.Evidence;

namespace DeviceAgent.Sensors.WaterLeak;

/// <summary>
/// A two-contact water-leak probe (or a comparator module such as the LM393 boards) on a GPIO input.
/// By default the pin uses the SoC pull-up and water bridging the contacts pulls it low (wet = Low).
/// The pin is debounced: a level counts only once it has been stable for <see cref="DebounceTime"/>,
/// so a drop running across the contacts or a bouncing float switch does not raise events.
/// </summary>
public sealed class WaterLeakProbe : IEventSensor
{
    /// <summary>Default pin: BCM GPIO 17 (physical pin 11 on the 40-pin header).</summary>
    public const int DefaultPin = 17;

    private readonly GpioController _controller;
    private readonly int _pin;
    private readonly PinValue _wetLevel;
    private readonly TimeProvider _time;
    private readonly ITimer _debounceTimer;
    private readonly Lock _gate = new();
    private bool _wet;
    private bool _disposed;
    private bool _debouncePending;

    /// <param name="controller">The GPIO controller; the driver opens <paramref name="pin"/> on it and closes it on dispose.</param>
    /// <param name="pin">Pin number in the controller's numbering (BCM on a Pi).</param>
    /// <param name="debounceTime">How long a level must stay stable before it counts (e.g. 200 ms).</param>
    /// <param name="time">Clock for the debounce timer.</param>
    /// <param name="wetLevel">Pin level that means wet (Low with the default pull-up wiring).</param>
    /// <param name="id">Sensor id in the kit.</param>
    public WaterLeakProbe(GpioController controller, int pin, TimeSpan debounceTime, TimeProvider time,
        PinValue? wetLevel = null, string id = "leak-probe")
    {
        ArgumentNullException.ThrowIfNull(controller);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfNegative(pin);
        ArgumentOutOfRangeException.ThrowIfNegative(debounceTime.Ticks, nameof(debounceTime));
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        _controller = controller;
        _pin = pin;
        _wetLevel = wetLevel ?? PinValue.Low;
        _time = time;
        DebounceTime = debounceTime;
        Id = id;

        var mode = _wetLevel == PinValue.Low ? PinMode.InputPullUp : PinMode.InputPullDown;
        if (!_controller.IsPinModeSupported(pin, mode))
        {
            mode = PinMode.Input;
        }

        _controller.OpenPin(pin, mode);
        _wet = _controller.Read(pin) == _wetLevel;
        _debounceTimer = time.CreateTimer(_ => OnDebounceElapsed(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _controller.RegisterCallbackForPinValueChangedEvent(pin, PinEventTypes.Rising | PinEventTypes.Falling, OnPinChanged);
    }

    public string Id { get; }

    public TimeSpan DebounceTime { get; }

    /// <summary>Raised once per debounced change, with the new water_leak reading.</summary>
    public event EventHandler<SensorSample>? Triggered;

    public SensorSample Read(DateTimeOffset now)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            bool levelWet;
            try
            {
                // The value is the debounced state; reading the line checks that the GPIO is still there.
                levelWet = _controller.Read(_pin) == _wetLevel;
            }
            catch (IOException ex)
            {
                return SensorSample.Faulted(Id, $"GPIO error reading leak probe pin {_pin}: {ex.Message}");
            }

            // A change whose edge was missed (e.g. while the GPIO was failing) still goes through the debounce.
            if (levelWet != _wet && !_debouncePending)
            {
                StartDebounce();
            }

            return Sample(_wet, now);
        }
    }

    private SensorSample Sample(bool wet, DateTimeOffset now) =>
        new(Id, [new Reading("water_leak", null, wet ? 1 : 0, now)]);

    // Every edge restarts the debounce window; only a level that survives the whole window counts.
    private void OnPinChanged(object sender, PinValueChangedEventArgs e)
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                StartDebounce();
            }
        }
    }

    private void StartDebounce()
    {
        _debouncePending = true;
        _debounceTimer.Change(DebounceTime, Timeout.InfiniteTimeSpan);
    }

    private void OnDebounceElapsed()
    {
        SensorSample? changed = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _debouncePending = false;
            bool wet;
            try
            {
                wet = _controller.Read(_pin) == _wetLevel;
            }
            catch (IOException)
            {
                // The next edge or poll tries again; a failed read must not flip the state.
                return;
            }

            if (wet != _wet)
            {
                _wet = wet;
                changed = Sample(wet, _time.GetUtcNow());
            }
        }

        if (changed is not null)
        {
            Triggered?.Invoke(this, changed);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _debounceTimer.Dispose();
        _controller.UnregisterCallbackForPinValueChangedEvent(_pin, OnPinChanged);
        if (_controller.IsPinOpen(_pin))
        {
            _controller.ClosePin(_pin);
        }
    }
}
