using System.Device.Gpio;
using System.Device.Spi;
using System.Numerics;
using Simulators.Buses;

namespace Simulators.Devices;

/// <summary>
/// An ADXL345 at register level (Analog Devices ADXL345 datasheet rev G, Table 19). The simulated world
/// feeds acceleration samples (in g) with <see cref="PushSample"/>; the model converts them with the
/// configured DATA_FORMAT, keeps the 32-entry FIFO in bypass/FIFO/stream/trigger mode, detects single
/// taps (THRESH_TAP, TAP_AXES) and free fall (THRESH_FF held for TIME_FF at the BW_RATE data rate), latches
/// them in INT_SOURCE and drives the INT1/INT2 lines per INT_MAP through a <see cref="SimulatedGpioDriver"/>.
/// It sits on SPI (4-wire, the interface the dotnet/iot driver speaks), as the luggage kit wires it.
/// </summary>
public sealed class SimulatedAdxl345 : SimulatedSpiDevice
{
    private const byte DevId = 0x00, ThreshTap = 0x1D, ThreshFf = 0x28, TimeFf = 0x29, TapAxes = 0x2A, BwRate = 0x2C,
        PowerCtl = 0x2D, IntEnable = 0x2E, IntMap = 0x2F, IntSource = 0x30, DataFormat = 0x31, DataX0 = 0x32, DataZ1 = 0x37,
        FifoCtl = 0x38, FifoStatus = 0x39;

    private const byte SingleTap = 1 << 6, FreeFallBit = 1 << 2, DataReady = 1 << 7, Watermark = 1 << 1, Overrun = 1 << 0;
    private const int FifoCapacity = 32;

    private readonly byte[] _registers = new byte[64];
    private readonly List<(short X, short Y, short Z)> _fifo = [];
    private (short X, short Y, short Z) _latest;
    private bool _triggered;
    private bool _aboveTap;
    private bool _fallLatchedThisEpisode;
    private int _fallSamples;
    private SimulatedGpioDriver? _gpio;
    private int _int1Pin = -1, _int2Pin = -1;
    private byte _newlyLatched;

    public SimulatedAdxl345(int busId = 0, int chipSelect = 0)
        : base(new SpiConnectionSettings(busId, chipSelect) { ClockFrequency = 5_000_000, Mode = SpiMode.Mode3 })
    {
        _registers[DevId] = 0xE5;
        _registers[BwRate] = 0x0A; // reset value: 100 Hz
    }

    /// <summary>Contents of DEVID (0xE5 on an ADXL345).</summary>
    public byte DeviceId
    {
        get => _registers[DevId];
        set => _registers[DevId] = value;
    }

    /// <summary>Output data rate from BW_RATE (Table 7: 3200 Hz >> (15 - code)).</summary>
    public double DataRateHz => 3200.0 / (1 << (15 - (_registers[BwRate] & 0x0F)));

    /// <summary>True while POWER_CTL.Measure is set.</summary>
    public bool Measuring => (_registers[PowerCtl] & 0x08) != 0;

    /// <summary>Entries currently held in the FIFO.</summary>
    public int FifoEntries => _fifo.Count;

    /// <summary>Wires INT1/INT2 (active high) to input pins of a simulated GPIO controller.</summary>
    public void ConnectInterrupts(SimulatedGpioDriver gpio, int int1Pin, int int2Pin)
    {
        ArgumentNullException.ThrowIfNull(gpio);
        _gpio = gpio;
        _int1Pin = int1Pin;
        _int2Pin = int2Pin;
    }

    /// <summary>Feeds one sample (acceleration in g along X, Y, Z) as the chip would measure it at its data rate.</summary>
    public void PushSample(Vector3 g)
    {
        Locked(() => Sample(g));
        UpdateInterruptLines();
    }

    /// <summary>Feeds <paramref name="duration"/> worth of samples at the data rate.</summary>
    public void Hold(Vector3 g, TimeSpan duration)
    {
        var count = Math.Max(1, (int)Math.Round(duration.TotalSeconds * DataRateHz));
        for (var i = 0; i < count; i++)
        {
            PushSample(g);
        }
    }

    protected override byte ReadRegister(byte address)
    {
        if (address >= _registers.Length)
        {
            return 0;
        }

        switch (address)
        {
            case IntSource:
                var value = _registers[IntSource];
                // Reading INT_SOURCE clears everything except DATA_READY, watermark and overrun (register 0x30).
                _registers[IntSource] &= DataReady | Watermark | Overrun;
                return value;
            case FifoStatus:
                return (byte)((_triggered ? 0x80 : 0) | Math.Min(_fifo.Count, FifoCapacity));
            case >= DataX0 and <= DataZ1:
                var s = FifoMode != 0 && _fifo.Count > 0 ? _fifo[0] : _latest;
                var axis = (address - DataX0) / 2;
                var raw = axis switch { 0 => s.X, 1 => s.Y, _ => s.Z };
                return (address - DataX0) % 2 == 0 ? (byte)raw : (byte)(raw >> 8);
            default:
                return _registers[address];
        }
    }

    protected override void WriteRegister(byte address, byte value)
    {
        switch (address)
        {
            case DevId or IntSource or FifoStatus or >= DataX0 and <= DataZ1:
                break; // read-only
            case FifoCtl:
                _registers[FifoCtl] = value;
                if (FifoMode == 0)
                {
                    // Bypass clears the FIFO and re-arms trigger mode (FIFO_CTL, trigger mode note).
                    _fifo.Clear();
                    _triggered = false;
                }

                break;
            case < 0x40:
                _registers[address] = value;
                break;
            default:
                break;
        }
    }

    // Reading the last data byte (0x37) ends the read of one sample and pops it from the FIFO ("Retrieving Data from FIFO").
    protected override void OnReadCompleted(byte start, int length)
    {
        if (start <= DataZ1 && start + length > DataZ1 && FifoMode != 0 && _fifo.Count > 0)
        {
            _fifo.RemoveAt(0);
        }

        if (start <= DataZ1 && start + length > DataX0)
        {
            _registers[IntSource] &= unchecked((byte)~DataReady);
        }
    }

    private int FifoMode => _registers[FifoCtl] >> 6;

    private void Sample(Vector3 g)
    {
        if (!Measuring)
        {
            return; // standby: no conversions (POWER_CTL)
        }

        var format = _registers[DataFormat];
        var range = format & 0b11;                           // ±2, 4, 8, 16 g
        var fullRes = (format & 0x08) != 0;
        // Full resolution keeps 3.9 mg/LSB (256 LSB/g) and widens the word; 10-bit mode halves sensitivity per range step.
        var lsbPerG = fullRes ? 256.0 : 256.0 / (1 << range);
        var bits = fullRes ? 10 + range : 10;
        var max = (1 << (bits - 1)) - 1;
        short Convert(float v) => (short)Math.Clamp(Math.Round(v * lsbPerG), -max - 1, max);
        _latest = (Convert(g.X), Convert(g.Y), Convert(g.Z));
        _registers[IntSource] |= DataReady;

        switch (FifoMode)
        {
            case 1: // FIFO: collect until full
                if (_fifo.Count < FifoCapacity)
                {
                    _fifo.Add(_latest);
                }
                else
                {
                    _registers[IntSource] |= Overrun;
                }

                break;
            case 2: // stream: keep the newest 32
                _fifo.Add(_latest);
                if (_fifo.Count > FifoCapacity)
                {
                    _fifo.RemoveAt(0);
                }

                break;
            case 3: // trigger: stream until triggered, then collect until full
                if (!_triggered)
                {
                    _fifo.Add(_latest);
                    if (_fifo.Count > FifoCapacity)
                    {
                        _fifo.RemoveAt(0);
                    }
                }
                else if (_fifo.Count < FifoCapacity)
                {
                    _fifo.Add(_latest);
                }

                break;
            default:
                break;
        }

        DetectEvents(g);
    }

    private void DetectEvents(Vector3 g)
    {
        var enabled = _registers[IntEnable];

        // Single tap: an enabled axis above THRESH_TAP (62.5 mg/LSB). One sample is shorter than DUR.
        var tapThreshold = _registers[ThreshTap] * 0.0625;
        var axes = _registers[TapAxes];
        var above = tapThreshold > 0 && (((axes & 0b100) != 0 && Math.Abs(g.X) > tapThreshold)
            || ((axes & 0b010) != 0 && Math.Abs(g.Y) > tapThreshold)
            || ((axes & 0b001) != 0 && Math.Abs(g.Z) > tapThreshold));
        if (above && !_aboveTap && (enabled & SingleTap) != 0)
        {
            Latch(SingleTap);
        }

        _aboveTap = above;

        // Free fall: all axes below THRESH_FF for at least TIME_FF (5 ms/LSB).
        var fallThreshold = _registers[ThreshFf] * 0.0625;
        var falling = fallThreshold > 0 && Math.Abs(g.X) < fallThreshold && Math.Abs(g.Y) < fallThreshold && Math.Abs(g.Z) < fallThreshold;
        _fallSamples = falling ? _fallSamples + 1 : 0;
        if (!falling)
        {
            _fallLatchedThisEpisode = false;
        }
        else if (!_fallLatchedThisEpisode && _fallSamples / DataRateHz * 1000 >= _registers[TimeFf] * 5.0 && (enabled & FreeFallBit) != 0)
        {
            _fallLatchedThisEpisode = true;
            Latch(FreeFallBit);
        }
    }

    private void Latch(byte source)
    {
        _registers[IntSource] |= source;
        _newlyLatched |= source;
        // Trigger mode: an interrupt on the trigger pin (FIFO_CTL D5: 0 = INT1) keeps the newest
        // "samples" entries from before the event and fills the rest afterwards.
        var onInt2 = (_registers[IntMap] & source) != 0;
        var triggerOnInt2 = (_registers[FifoCtl] & 0x20) != 0;
        if (FifoMode == 3 && !_triggered && onInt2 == triggerOnInt2)
        {
            var keep = _registers[FifoCtl] & 0x1F;
            // The triggering sample itself is the newest entry and is kept with the ones before it.
            while (_fifo.Count > Math.Max(keep, 1))
            {
                _fifo.RemoveAt(0);
            }

            _triggered = true;
        }
    }

    private void UpdateInterruptLines()
    {
        if (_gpio is null)
        {
            return;
        }

        byte active = 0, map = 0, fresh = 0;
        Locked(() =>
        {
            active = (byte)(_registers[IntSource] & _registers[IntEnable]);
            map = _registers[IntMap];
            fresh = (byte)(_newlyLatched & _registers[IntEnable]);
            _newlyLatched = 0;
        });

        // The line follows INT_SOURCE & INT_ENABLE; a newly latched event always shows as a rising edge,
        // even when the line was still high from an event nobody has read yet.
        Drive(_int1Pin, (active & ~map) != 0, (fresh & ~map) != 0);
        Drive(_int2Pin, (active & map) != 0, (fresh & map) != 0);
    }

    private void Drive(int pin, bool level, bool freshEdge)
    {
        if (pin < 0 || _gpio is null)
        {
            return;
        }

        if (freshEdge)
        {
            _gpio.SetInput(pin, PinValue.Low);
        }

        _gpio.SetInput(pin, level ? PinValue.High : PinValue.Low);
    }
}
