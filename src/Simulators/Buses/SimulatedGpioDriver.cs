using System.Device.Gpio;

namespace Simulators.Buses;

/// <summary>
/// A <see cref="GpioDriver"/> whose input levels are set by the simulated world (<see cref="SetInput"/>).
/// Level changes invoke the callbacks registered through <see cref="GpioController"/>, on the caller's thread.
/// </summary>
public sealed class SimulatedGpioDriver : GpioDriver
{
    private readonly Lock _gate = new();
    private readonly Dictionary<int, PinState> _pins = [];

    /// <summary>Makes every <see cref="Read(int)"/> throw, like a GPIO character device that went away.</summary>
    public bool Faulted { get; set; }

    protected override int PinCount => 28;

    /// <summary>Drives the level of an input pin from outside (water on the probe, a chip's INT line).</summary>
    public void SetInput(int pin, PinValue value)
    {
        List<PinChangeEventHandler> toCall = [];
        PinEventTypes change;
        lock (_gate)
        {
            var state = State(pin);
            if (state.Value == value)
            {
                return;
            }

            state.Value = value;
            change = value == PinValue.High ? PinEventTypes.Rising : PinEventTypes.Falling;
            if (state.Open)
            {
                foreach (var (handler, types) in state.Callbacks)
                {
                    if ((types & change) != 0)
                    {
                        toCall.Add(handler);
                    }
                }
            }
        }

        var args = new PinValueChangedEventArgs(change, pin);
        foreach (var handler in toCall)
        {
            handler(this, args);
        }
    }

    /// <summary>The level a pin currently has.</summary>
    public PinValue Level(int pin)
    {
        lock (_gate)
        {
            return State(pin).Value;
        }
    }

    /// <summary>Number of callbacks registered on a pin (for tests checking clean-up).</summary>
    public int CallbackCount(int pin)
    {
        lock (_gate)
        {
            return State(pin).Callbacks.Count;
        }
    }

    protected override void OpenPin(int pinNumber)
    {
        lock (_gate)
        {
            State(pinNumber).Open = true;
        }
    }

    protected override void ClosePin(int pinNumber)
    {
        lock (_gate)
        {
            var state = State(pinNumber);
            state.Open = false;
            state.Callbacks.Clear();
        }
    }

    protected override void SetPinMode(int pinNumber, PinMode mode)
    {
        lock (_gate)
        {
            var state = State(pinNumber);
            // A floating input with a pull resistor reads the pulled level until something drives it.
            if (!state.Driven)
            {
                state.Pull(mode == PinMode.InputPullUp ? PinValue.High : PinValue.Low);
            }

            state.Mode = mode;
        }
    }

    protected override PinMode GetPinMode(int pinNumber)
    {
        lock (_gate)
        {
            return State(pinNumber).Mode;
        }
    }

    protected override bool IsPinModeSupported(int pinNumber, PinMode mode) =>
        mode is PinMode.Input or PinMode.InputPullUp or PinMode.InputPullDown or PinMode.Output;

    protected override PinValue Read(int pinNumber)
    {
        lock (_gate)
        {
            if (Faulted)
            {
                throw new IOException($"Error 5 reading GPIO {pinNumber} (simulated EIO).", 5);
            }

            return State(pinNumber).Value;
        }
    }

    protected override void Write(int pinNumber, PinValue value) => SetInput(pinNumber, value);

    protected override void AddCallbackForPinValueChangedEvent(int pinNumber, PinEventTypes eventTypes, PinChangeEventHandler callback)
    {
        lock (_gate)
        {
            State(pinNumber).Callbacks.Add((callback, eventTypes));
        }
    }

    protected override void RemoveCallbackForPinValueChangedEvent(int pinNumber, PinChangeEventHandler callback)
    {
        lock (_gate)
        {
            State(pinNumber).Callbacks.RemoveAll(c => c.Handler == callback);
        }
    }

    protected override WaitForEventResult WaitForEvent(int pinNumber, PinEventTypes eventTypes, CancellationToken cancellationToken)
    {
        using var signalled = new ManualResetEventSlim();
        var seen = PinEventTypes.None;
        void Handler(object sender, PinValueChangedEventArgs e)
        {
            seen = e.ChangeType;
            signalled.Set();
        }

        AddCallbackForPinValueChangedEvent(pinNumber, eventTypes, Handler);
        try
        {
            signalled.Wait(cancellationToken);
            return new WaitForEventResult { EventTypes = seen, TimedOut = false };
        }
        catch (OperationCanceledException)
        {
            return new WaitForEventResult { EventTypes = PinEventTypes.None, TimedOut = true };
        }
        finally
        {
            RemoveCallbackForPinValueChangedEvent(pinNumber, Handler);
        }
    }

    private PinState State(int pin)
    {
        if (!_pins.TryGetValue(pin, out var state))
        {
            state = new PinState();
            _pins[pin] = state;
        }

        return state;
    }

    private sealed class PinState
    {
        private PinValue _value = PinValue.Low;

        public bool Open { get; set; }

        public bool Driven { get; private set; }

        public PinMode Mode { get; set; } = PinMode.Input;

        public PinValue Value
        {
            get => _value;
            set
            {
                _value = value;
                Driven = true;
            }
        }

        public void Pull(PinValue value) => _value = value;

        public List<(PinChangeEventHandler Handler, PinEventTypes Types)> Callbacks { get; } = [];
    }
}
