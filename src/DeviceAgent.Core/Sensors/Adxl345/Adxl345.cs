using System.Buffers.Binary;
using System.Device.Gpio;
using System.Device.I2c;
using System.Globalization;
using System.Numerics;
using ShareVault.Evidence;

namespace DeviceAgent.Sensors.Adxl345;

/// <summary>
/// Analog Devices ADXL345 3-axis accelerometer over I2C, configured for luggage: full resolution
/// ±16 g, 100 Hz, single-tap detection as the shock detector (THRESH_TAP up to 15.9 g), free-fall
/// detection, and the FIFO in trigger mode so that the samples around a shock are kept until read
/// (datasheet "FIFO", trigger mode). Each read reports <c>shock</c> (peak acceleration magnitude
/// in m/s2 over the samples since the previous read) and <c>free_fall</c> (1 when the chip latched
/// a free fall since the previous read).
/// When INT1/INT2 are wired to GPIO inputs the driver also reads and raises <see cref="Triggered"/>
/// the moment the chip signals a shock (INT1) or free fall (INT2).
/// </summary>
public sealed class Adxl345 : IEventSensor
{
    /// <summary>I2C address with ALT ADDRESS tied low (datasheet "I2C"); 0x1D with ALT ADDRESS high.</summary>
    public const int DefaultI2cAddress = 0x53;

    public const byte ExpectedDeviceId = 0xE5;

    /// <summary>Standard gravity (CGPM 1901), for converting g to m/s2.</summary>
    public const double StandardGravity = 9.80665;

    /// <summary>Full resolution scale factor: 256 LSB/g, i.e. 3.9 mg/LSB (Table 1, "Sensitivity", full res).</summary>
    public const double LsbPerG = 256;

    // In full-resolution ±16 g mode the output is 13 bits, sign-extended to 16 (DATA_FORMAT, "FULL_RES").
    private const int MaxRaw = 4095, MinRaw = -4096;

    private const byte DataFormatFullRes16G = (1 << 3) | 0b11;
    private const byte BwRate100Hz = 0x0A;                          // Table 7: rate code 1010 = 100 Hz.
    private const byte PowerCtlMeasure = 1 << 3;
    private const byte FifoModeBypass = 0b00 << 6;
    private const byte FifoModeTrigger = 0b11 << 6;
    private const byte FifoTriggerSamples = 16;                     // samples kept from before the trigger
    private const byte FifoTriggered = 1 << 7;
    private const byte FifoEntriesMask = 0x3F;

    private readonly I2cDevice _device;
    private readonly TimeProvider _time;
    private readonly GpioController? _interrupts;
    private readonly int _int1Pin;
    private readonly int _int2Pin;
    private readonly Lock _gate = new();
    private bool _configured;
    private bool _disposed;

    /// <param name="device">The I2C device at 0x53 or 0x1D; owned and disposed by this driver.</param>
    /// <param name="time">Clock used to stamp interrupt-driven readings.</param>
    /// <param name="shockThresholdG">THRESH_TAP in g (0.0625..15.9375), 8 g by default.</param>
    /// <param name="interrupts">Optional GPIO controller with the INT1 (shock) and INT2 (free fall) pins.</param>
    /// <param name="int1Pin">GPIO wired to INT1, or -1.</param>
    /// <param name="int2Pin">GPIO wired to INT2, or -1.</param>
    /// <param name="id">Sensor id in the kit.</param>
    public Adxl345(I2cDevice device, TimeProvider time, double shockThresholdG = 8,
        GpioController? interrupts = null, int int1Pin = -1, int int2Pin = -1, string id = "adxl345")
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        // THRESH_TAP is 8 bits at 62.5 mg/LSB, so 0x01..0xFF covers 0.0625..15.9375 g.
        if (!(shockThresholdG >= 0.0625 && shockThresholdG <= 15.9375))
        {
            throw new ArgumentOutOfRangeException(nameof(shockThresholdG), shockThresholdG, "THRESH_TAP covers 0.0625..15.9375 g.");
        }

        if (interrupts is null && (int1Pin >= 0 || int2Pin >= 0))
        {
            throw new ArgumentException("Interrupt pins need a GpioController.", nameof(interrupts));
        }

        _device = device;
        _time = time;
        ShockThresholdG = shockThresholdG;
        Id = id;
        _interrupts = interrupts;
        _int1Pin = int1Pin;
        _int2Pin = int2Pin;
        foreach (var pin in new[] { int1Pin, int2Pin })
        {
            if (interrupts is not null && pin >= 0)
            {
                interrupts.OpenPin(pin, PinMode.Input);
                // INT pins are active high (DATA_FORMAT INT_INVERT = 0).
                interrupts.RegisterCallbackForPinValueChangedEvent(pin, PinEventTypes.Rising, OnInterrupt);
            }
        }
    }

    public string Id { get; }

    public double ShockThresholdG { get; }

    public event EventHandler<SensorSample>? Triggered;

    public SensorSample Read(DateTimeOffset now)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                if (!_configured)
                {
                    var fault = Configure();
                    if (fault is not null)
                    {
                        return SensorSample.Faulted(Id, fault);
                    }
                }

                return Sample(now);
            }
            catch (IOException ex)
            {
                _configured = false;
                return SensorSample.Faulted(Id, $"I2C bus error talking to ADXL345 at 0x{_device.ConnectionSettings.DeviceAddress:X2}: {ex.Message}");
            }
        }
    }

    private string? Configure()
    {
        var devId = ReadRegister(Adxl345Register.DevId);
        if (devId != ExpectedDeviceId)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"unexpected device id 0x{devId:X2} in register 0x00 at I2C 0x{_device.ConnectionSettings.DeviceAddress:X2}; an ADXL345 reports 0x{ExpectedDeviceId:X2}");
        }

        // Configure in standby (POWER_CTL = 0), then enter measurement mode ("Power Sequencing").
        WriteRegister(Adxl345Register.PowerCtl, 0);
        WriteRegister(Adxl345Register.BwRate, BwRate100Hz);
        WriteRegister(Adxl345Register.DataFormat, DataFormatFullRes16G);
        WriteRegister(Adxl345Register.ThreshTap, (byte)Math.Clamp(Math.Round(ShockThresholdG / 0.0625), 1, 255));
        WriteRegister(Adxl345Register.Dur, 0x50);       // 50 ms: an impact is shorter than that.
        WriteRegister(Adxl345Register.TapAxes, 0x07);   // X, Y and Z take part.
        WriteRegister(Adxl345Register.ThreshFf, 0x07);  // 437.5 mg (300..600 mg recommended, register 0x28).
        WriteRegister(Adxl345Register.TimeFf, 0x14);    // 100 ms, about 5 cm of fall (100..350 ms recommended, register 0x29).
        // Shock on INT1 (it is also the FIFO trigger), free fall on INT2.
        WriteRegister(Adxl345Register.IntMap, (byte)Adxl345Interrupts.FreeFall);
        WriteRegister(Adxl345Register.IntEnable, (byte)(Adxl345Interrupts.SingleTap | Adxl345Interrupts.FreeFall));
        ArmFifo();
        WriteRegister(Adxl345Register.PowerCtl, PowerCtlMeasure);
        _ = ReadRegister(Adxl345Register.IntSource);  // clear anything latched before configuration
        _configured = true;
        return null;
    }

    // Trigger mode, trigger on INT1, keep FifoTriggerSamples samples from before the event. A new trigger is
    // recognised only after passing through bypass mode, which also clears the FIFO (FIFO_CTL, trigger mode).
    private void ArmFifo()
    {
        WriteRegister(Adxl345Register.FifoCtl, FifoModeBypass);
        WriteRegister(Adxl345Register.FifoCtl, FifoModeTrigger | FifoTriggerSamples);
    }

    private SensorSample Sample(DateTimeOffset now)
    {
        // INT_SOURCE first: reading it clears the latched tap and free-fall bits.
        var sources = (Adxl345Interrupts)ReadRegister(Adxl345Register.IntSource);
        var fifo = ReadRegister(Adxl345Register.FifoStatus);
        var entries = Math.Max(1, fifo & FifoEntriesMask);
        var peak = 0.0;
        Span<byte> raw = stackalloc byte[6];
        for (var i = 0; i < entries; i++)
        {
            // One multi-byte read of DATAX0..DATAZ1 pops one FIFO entry ("Retrieving Data from FIFO").
            _device.WriteRead([(byte)Adxl345Register.DataX0], raw);
            var x = BinaryPrimitives.ReadInt16LittleEndian(raw);
            var y = BinaryPrimitives.ReadInt16LittleEndian(raw[2..]);
            var z = BinaryPrimitives.ReadInt16LittleEndian(raw[4..]);
            if (x is > MaxRaw or < MinRaw || y is > MaxRaw or < MinRaw || z is > MaxRaw or < MinRaw)
            {
                return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                    $"implausible ADXL345 sample ({x}, {y}, {z}): full-resolution ±16 g data is 13 bits ({MinRaw}..{MaxRaw})"));
            }

            var g = new Vector3(x, y, z).Length() / LsbPerG;
            peak = Math.Max(peak, g * StandardGravity);
        }

        if ((fifo & FifoTriggered) != 0)
        {
            ArmFifo();
        }

        var freeFall = (sources & Adxl345Interrupts.FreeFall) != 0;
        return new SensorSample(Id,
        [
            new Reading("shock", "m/s2", Math.Round(peak, 3), now),
            new Reading("free_fall", null, freeFall ? 1 : 0, now),
        ]);
    }

    private void OnInterrupt(object sender, PinValueChangedEventArgs e)
    {
        SensorSample sample;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            sample = Read(_time.GetUtcNow());
        }

        Triggered?.Invoke(this, sample);
    }

    private byte ReadRegister(Adxl345Register register)
    {
        Span<byte> value = stackalloc byte[1];
        _device.WriteRead([(byte)register], value);
        return value[0];
    }

    // I2C single-byte write: register address then data ("I2C", Figure 41).
    private void WriteRegister(Adxl345Register register, byte value) => _device.Write([(byte)register, value]);

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

        if (_interrupts is not null)
        {
            foreach (var pin in new[] { _int1Pin, _int2Pin })
            {
                if (pin >= 0)
                {
                    _interrupts.UnregisterCallbackForPinValueChangedEvent(pin, OnInterrupt);
                    _interrupts.ClosePin(pin);
                }
            }
        }

        _device.Dispose();
    }
}
