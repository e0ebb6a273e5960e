using System.Device.Gpio;
using System.Device.Spi;
using System.Globalization;
using ShareVault.Evidence;
using Library = Iot.Device.Adxl345;

namespace DeviceAgent.Sensors.Adxl345;

/// <summary>
/// Analog Devices ADXL345 3-axis accelerometer on SPI, configured for luggage. Acceleration is read
/// through the dotnet/iot driver (<see cref="Library.Adxl345"/>, Iot.Device.Bindings: 4-wire SPI
/// mode 3, ±16 g, 10-bit, 32 LSB/g, one multi-byte read of DATAX0..DATAZ1 per sample). That driver
/// does nothing else, so this class adds what a luggage tag needs (datasheet rev G): the DEVID check,
/// single-tap detection as the shock detector (THRESH_TAP up to 15.9 g), free-fall detection,
/// INT1/INT2 mapping, and the FIFO in trigger mode so that the samples around a shock are kept until
/// read (datasheet "FIFO", trigger mode). Each read drains the FIFO through the library and reports
/// <c>shock</c> (peak acceleration magnitude in m/s2 since the previous read) and <c>free_fall</c>
/// (1 when the chip latched a free fall since the previous read). When INT1/INT2 are wired to GPIO
/// inputs the sensor also reads and raises <see cref="Triggered"/> the moment the chip signals a
/// shock (INT1) or free fall (INT2).
/// </summary>
public sealed class Adxl345Sensor : IEventSensor
{
    /// <summary>SPI bus 0, chip select CE0 (GPIO 8) on a Raspberry Pi.</summary>
    public const int DefaultSpiBus = 0, DefaultChipSelect = 0;

    public const byte ExpectedDeviceId = 0xE5;

    /// <summary>Standard gravity (CGPM 1901), for converting g to m/s2.</summary>
    public const double StandardGravity = 9.80665;

    /// <summary>Full scale of the ±16 g range the library is set to; a component beyond it is not a sample.</summary>
    public const double FullScaleG = 16;

    // Register addresses with the SPI read bit (datasheet "SPI": bit 7 R/W, bit 6 MB, bits 5:0 address).
    private const byte SpiRead = 0x80;
    private const byte BwRate100Hz = 0x0A;                          // Table 7: rate code 1010 = 100 Hz.
    private const byte PowerCtlMeasure = 1 << 3;
    private const byte FifoModeBypass = 0b00 << 6;
    private const byte FifoModeTrigger = 0b11 << 6;
    private const byte FifoTriggerSamples = 16;                     // samples kept from before the trigger
    private const byte FifoTriggered = 1 << 7;
    private const byte FifoEntriesMask = 0x3F;

    private readonly SpiDevice _device;
    private readonly TimeProvider _time;
    private readonly GpioController? _interrupts;
    private readonly int _int1Pin;
    private readonly int _int2Pin;
    private readonly Lock _gate = new();
    private Library.Adxl345? _driver;
    private bool _disposed;

    /// <summary>The SPI settings the library driver expects: 5 MHz, mode 3 (CPOL = CPHA = 1).</summary>
    public static SpiConnectionSettings SpiSettings(int busId = DefaultSpiBus, int chipSelect = DefaultChipSelect) =>
        new(busId, chipSelect) { ClockFrequency = Library.Adxl345.SpiClockFrequency, Mode = Library.Adxl345.SpiMode };

    /// <param name="device">The SPI device (CS on CE0 or CE1); owned and disposed by this sensor.</param>
    /// <param name="time">Clock used to stamp interrupt-driven readings.</param>
    /// <param name="shockThresholdG">THRESH_TAP in g (0.0625..15.9375), 8 g by default.</param>
    /// <param name="interrupts">Optional GPIO controller with the INT1 (shock) and INT2 (free fall) pins.</param>
    /// <param name="int1Pin">GPIO wired to INT1, or -1.</param>
    /// <param name="int2Pin">GPIO wired to INT2, or -1.</param>
    /// <param name="id">Sensor id in the kit.</param>
    public Adxl345Sensor(SpiDevice device, TimeProvider time, double shockThresholdG = 8,
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
                // INT pins are active high (DATA_FORMAT INT_INVERT = 0, which the library writes).
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
                if (_driver is null)
                {
                    var fault = Configure();
                    if (fault is not null)
                    {
                        return SensorSample.Faulted(Id, fault);
                    }
                }

                return Sample(_driver!, now);
            }
            catch (IOException ex)
            {
                _driver = null; // configure again on the next read; not disposed: it would dispose the SPI device
                return SensorSample.Faulted(Id, $"SPI error talking to ADXL345 on spidev{_device.ConnectionSettings.BusId}.{_device.ConnectionSettings.ChipSelectLine}: {ex.Message}");
            }
        }
    }

    private string? Configure()
    {
        // The library driver writes to the chip without identifying it; check DEVID first.
        var devId = ReadRegister(Adxl345Register.DevId);
        if (devId != ExpectedDeviceId)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"unexpected device id 0x{devId:X2} in register 0x00 on spidev{_device.ConnectionSettings.BusId}.{_device.ConnectionSettings.ChipSelectLine}; an ADXL345 reports 0x{ExpectedDeviceId:X2}");
        }

        // The library writes DATA_FORMAT (±16 g, 10-bit, 4-wire SPI, INT active high) and starts measuring.
        var driver = new Library.Adxl345(_device, Library.GravityRange.Range16);

        // The event set-up the library lacks, written in standby (POWER_CTL = 0, "Power Sequencing").
        WriteRegister(Adxl345Register.PowerCtl, 0);
        WriteRegister(Adxl345Register.BwRate, BwRate100Hz);
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
        _driver = driver;
        return null;
    }

    // Trigger mode, trigger on INT1, keep FifoTriggerSamples samples from before the event. A new trigger is
    // recognised only after passing through bypass mode, which also clears the FIFO (FIFO_CTL, trigger mode).
    private void ArmFifo()
    {
        WriteRegister(Adxl345Register.FifoCtl, FifoModeBypass);
        WriteRegister(Adxl345Register.FifoCtl, FifoModeTrigger | FifoTriggerSamples);
    }

    private SensorSample Sample(Library.Adxl345 driver, DateTimeOffset now)
    {
        // INT_SOURCE first: reading it clears the latched tap and free-fall bits.
        var sources = (Adxl345Interrupts)ReadRegister(Adxl345Register.IntSource);
        var fifo = ReadRegister(Adxl345Register.FifoStatus);
        var entries = Math.Max(1, fifo & FifoEntriesMask);
        var peak = 0.0;
        for (var i = 0; i < entries; i++)
        {
            // The library's one multi-byte read of DATAX0..DATAZ1 pops one FIFO entry ("Retrieving Data from FIFO").
            var g = driver.Acceleration;
            if (!(Math.Abs(g.X) <= FullScaleG && Math.Abs(g.Y) <= FullScaleG && Math.Abs(g.Z) <= FullScaleG))
            {
                return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
                    $"implausible ADXL345 sample ({g.X:F2}, {g.Y:F2}, {g.Z:F2}) g: the ±{FullScaleG} g range is 10 bits"));
            }

            peak = Math.Max(peak, g.Length() * StandardGravity);
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

    // SPI single-register read: the address byte with R/W = 1, MB = 0, then one data byte clocked out (datasheet "SPI", Figure 38).
    private byte ReadRegister(Adxl345Register register)
    {
        Span<byte> read = stackalloc byte[2];
        _device.TransferFullDuplex([(byte)((byte)register | SpiRead), 0], read);
        return read[1];
    }

    // SPI single-register write: the address byte with R/W = 0, MB = 0, then the data byte (Figure 37).
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
