using System.Buffers.Binary;
using Simulators.Buses;

namespace Simulators.Devices;

/// <summary>
/// A BME280 at register level (Bosch BME280 datasheet rev 1.6, §5.3 memory map). It holds factory
/// trimming parameters in 0x88..0xA1 / 0xE1..0xE7 and, on each forced measurement (ctrl_meas mode = 01),
/// places raw ADC values in 0xF7..0xFE that the datasheet's compensation turns back into the
/// temperature, humidity and pressure set with <see cref="SetEnvironment"/>.
/// The raw values are found by inverting the floating-point compensation of §8.1 (bisection on the
/// monotonic ADC-to-value functions); the driver uses the integer formulas of §4.2.3, so a round trip
/// cross-checks two independent implementations of the datasheet.
/// </summary>
public sealed class SimulatedBme280 : SimulatedI2cDevice
{
    private const byte CtrlHum = 0xF2, Status = 0xF3, CtrlMeas = 0xF4, Config = 0xF5, Reset = 0xE0, ChipIdRegister = 0xD0;

    private readonly byte[] _registers = new byte[256];
    private readonly Trimming _trimming;
    private double _celsius = 21, _relativeHumidity = 45, _pascal = 101_325;
    private byte _ctrlHumLatched;
    private int _busyRemaining;
    private bool _stale;
    private (int AdcT, int AdcP, int AdcH)? _rawOverride;

    /// <param name="busId">I2C bus number (1 on a Pi's header).</param>
    /// <param name="address">0x76 or 0x77.</param>
    /// <param name="trimming">Calibration to burn into the simulated NVM; <see cref="Trimming.Typical"/> by default.</param>
    public SimulatedBme280(int busId = 1, int address = 0x76, Trimming? trimming = null)
        : base(busId, address)
    {
        _trimming = trimming ?? Trimming.Typical;
        WriteTrimming(_trimming);
        ChipId = 0x60;
    }

    /// <summary>Contents of the id register 0xD0 (0x60 for a BME280; set 0x58 to impersonate a BMP280).</summary>
    public byte ChipId
    {
        get => _registers[ChipIdRegister];
        set => _registers[ChipIdRegister] = value;
    }

    /// <summary>
    /// How many status reads after a forced measurement still report status.measuring = 1, to model the
    /// conversion time (§9.1); 0 by default, so simulated reads do not wait.
    /// </summary>
    public int BusyStatusReads { get; set; }

    /// <summary>Number of forced measurements performed.</summary>
    public int Measurements { get; private set; }

    /// <summary>Sets the environment the next measurement reports.</summary>
    public void SetEnvironment(double celsius, double relativeHumidity, double pascal) =>
        Locked(() =>
        {
            (_celsius, _relativeHumidity, _pascal) = (celsius, relativeHumidity, pascal);
            _stale = true;
        });

    /// <summary>Raw ADC values that §8.1 compensation maps to the given environment (for tests and tools).</summary>
    /// <summary>
    /// Makes every following measurement return these raw ADC values instead of the environment's
    /// (null goes back to the environment): for the datasheet's compensation examples, which start
    /// from raw values.
    /// </summary>
    public void SetRawOverride((int AdcT, int AdcP, int AdcH)? raw) =>
        Locked(() =>
        {
            _rawOverride = raw;
            _stale = true;
        });

    public (int AdcT, int AdcP, int AdcH) RawFor(double celsius, double relativeHumidity, double pascal) =>
        _trimming.Invert(celsius, relativeHumidity, pascal);

    protected override byte ReadRegister(byte address)
    {
        // Normal mode measures continuously (§3.3.4): a read of the data registers after the world
        // changed sees a measurement of the new environment.
        if (address is >= 0xF7 and <= 0xFE && _stale && (_registers[CtrlMeas] & 0b11) == 0b11)
        {
            Measure();
        }

        if (address == Status && _busyRemaining > 0)
        {
            _busyRemaining--;
            return (byte)(_registers[Status] | (1 << 3));
        }

        return _registers[address];
    }

    // BME280 I2C writes are register/data pairs: "slave address, register address, data, register address, data..." (§6.2.1).
    protected override void WriteData(ReadOnlySpan<byte> data)
    {
        var register = RegisterPointer;
        for (var i = 0; i < data.Length; i++)
        {
            if (i % 2 == 0)
            {
                WriteRegister(register, data[i]);
            }
            else
            {
                register = data[i];
            }
        }

        RegisterPointer = register;
    }

    protected override void WriteRegister(byte address, byte value)
    {
        switch (address)
        {
            case Reset when value == 0xB6:
                // Power-on reset (§5.4.2): control registers back to 0, NVM reloaded.
                _registers[CtrlHum] = _registers[CtrlMeas] = _registers[Config] = _registers[Status] = 0;
                _ctrlHumLatched = 0;
                WriteTrimming(_trimming);
                break;
            case CtrlHum:
                _registers[CtrlHum] = (byte)(value & 0x07);
                break;
            case CtrlMeas:
                _registers[CtrlMeas] = value;
                // ctrl_hum becomes effective only after a write to ctrl_meas (§5.4.3).
                _ctrlHumLatched = _registers[CtrlHum];
                if ((value & 0b11) is 0b01 or 0b10)
                {
                    Measure();
                    // Forced mode: back to sleep once the measurement is done (§3.3.2).
                    _registers[CtrlMeas] = (byte)(value & ~0b11);
                }
                else if ((value & 0b11) == 0b11)
                {
                    Measure(); // normal mode: the first measurement of the cycle
                }

                break;
            case Config:
                // Writes to config in normal mode may be ignored (§5.4.6); this model always takes them.
                _registers[Config] = value;
                break;
            default:
                // The data, id and calibration registers are read-only.
                break;
        }
    }

    private void Measure()
    {
        Measurements++;
        _stale = false;
        _busyRemaining = BusyStatusReads;
        var osrsT = (_registers[CtrlMeas] >> 5) & 0b111;
        var osrsP = (_registers[CtrlMeas] >> 2) & 0b111;
        var osrsH = _ctrlHumLatched & 0b111;
        var (adcT, adcP, adcH) = _rawOverride ?? _trimming.Invert(_celsius, _relativeHumidity, _pascal);

        // A skipped channel (osrs = 000) keeps its reset value 0x80000 / 0x8000 (Tables 20, 22, 23).
        if (osrsT == 0)
        {
            adcT = 0x80000;
        }

        if (osrsP == 0)
        {
            adcP = 0x80000;
        }

        if (osrsH == 0)
        {
            adcH = 0x8000;
        }

        Put20(0xF7, adcP);
        Put20(0xFA, adcT);
        _registers[0xFD] = (byte)(adcH >> 8);
        _registers[0xFE] = (byte)adcH;
    }

    // 20-bit value as msb[19:12], lsb[11:4], xlsb[7:4] (§5.4.7, §5.4.8).
    private void Put20(int register, int value)
    {
        _registers[register] = (byte)(value >> 12);
        _registers[register + 1] = (byte)(value >> 4);
        _registers[register + 2] = (byte)((value & 0x0F) << 4);
    }

    private void WriteTrimming(Trimming t)
    {
        var tp = _registers.AsSpan(0x88, 26);
        BinaryPrimitives.WriteUInt16LittleEndian(tp, t.T1);
        BinaryPrimitives.WriteInt16LittleEndian(tp[2..], t.T2);
        BinaryPrimitives.WriteInt16LittleEndian(tp[4..], t.T3);
        BinaryPrimitives.WriteUInt16LittleEndian(tp[6..], t.P1);
        short[] p = [t.P2, t.P3, t.P4, t.P5, t.P6, t.P7, t.P8, t.P9];
        for (var i = 0; i < p.Length; i++)
        {
            BinaryPrimitives.WriteInt16LittleEndian(tp[(8 + (2 * i))..], p[i]);
        }

        tp[24] = 0; // 0xA0 is reserved.
        tp[25] = t.H1;
        var h = _registers.AsSpan(0xE1, 7);
        BinaryPrimitives.WriteInt16LittleEndian(h, t.H2);
        h[2] = t.H3;
        h[3] = (byte)(t.H4 >> 4);                              // 0xE4: dig_H4[11:4]
        h[4] = (byte)((t.H4 & 0x0F) | ((t.H5 & 0x0F) << 4));   // 0xE5: dig_H5[3:0] | dig_H4[3:0]
        h[5] = (byte)(t.H5 >> 4);                              // 0xE6: dig_H5[11:4]
        h[6] = (byte)t.H6;
    }

    /// <summary>Trimming parameters (datasheet Table 16) and the floating-point compensation of §8.1.</summary>
    public readonly record struct Trimming(
        ushort T1, short T2, short T3,
        ushort P1, short P2, short P3, short P4, short P5, short P6, short P7, short P8, short P9,
        byte H1, short H2, byte H3, short H4, short H5, sbyte H6)
    {
        /// <summary>
        /// T/P values from the Bosch BMP280 datasheet's compensation example (Table 16, the same
        /// formulas as BME280 §4.2.3) and humidity values in the range real BME280 parts carry.
        /// </summary>
        public static Trimming Typical { get; } = new(
            27504, 26435, -1000,
            36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
            75, 362, 0, 313, 50, 30);

        /// <summary>§8.1 bme280_compensate_T_double: (°C, t_fine).</summary>
        public (double Celsius, int TFine) Temperature(int adcT)
        {
            var var1 = ((adcT / 16384.0) - (T1 / 1024.0)) * T2;
            var d = (adcT / 131072.0) - (T1 / 8192.0);
            var var2 = d * d * T3;
            return ((var1 + var2) / 5120.0, (int)(var1 + var2));
        }

        /// <summary>§8.1 bme280_compensate_P_double, in Pa.</summary>
        public double Pressure(int adcP, int tFine)
        {
            var var1 = (tFine / 2.0) - 64000.0;
            var var2 = var1 * var1 * P6 / 32768.0;
            var2 += var1 * P5 * 2.0;
            var2 = (var2 / 4.0) + (P4 * 65536.0);
            var1 = ((P3 * var1 * var1 / 524288.0) + (P2 * var1)) / 524288.0;
            var1 = (1.0 + (var1 / 32768.0)) * P1;
            if (var1 == 0)
            {
                return 0;
            }

            var p = 1048576.0 - adcP;
            p = (p - (var2 / 4096.0)) * 6250.0 / var1;
            var1 = P9 * p * p / 2147483648.0;
            var2 = p * P8 / 32768.0;
            return p + ((var1 + var2 + P7) / 16.0);
        }

        /// <summary>§8.1 bme280_compensate_H_double, in %RH.</summary>
        public double Humidity(int adcH, int tFine)
        {
            var h = tFine - 76800.0;
            h = (adcH - ((H4 * 64.0) + (H5 / 16384.0 * h)))
                * (H2 / 65536.0 * (1.0 + (H6 / 67108864.0 * h * (1.0 + (H3 / 67108864.0 * h)))));
            h *= 1.0 - (H1 * h / 524288.0);
            return Math.Clamp(h, 0, 100);
        }

        /// <summary>Raw ADC values whose compensated values are closest to the requested environment.</summary>
        public (int AdcT, int AdcP, int AdcH) Invert(double celsius, double relativeHumidity, double pascal)
        {
            var self = this;
            var adcT = Search(adc => self.Temperature(adc).Celsius, celsius, 0xFFFFF, 0x80000);
            var tFine = Temperature(adcT).TFine;
            var adcP = Search(adc => self.Pressure(adc, tFine), pascal, 0xFFFFF, 0x80000);
            var adcH = Search(adc => self.Humidity(adc, tFine), relativeHumidity, 0xFFFF, 0x8000);
            return (adcT, adcP, adcH);
        }

        // Bisection on a monotonic function over 0..max; never returns the "skipped" reset value.
        private static int Search(Func<int, double> f, double target, int max, int reserved)
        {
            var increasing = f(max) > f(0);
            int lo = 0, hi = max;
            while (lo < hi)
            {
                var mid = lo + ((hi - lo) / 2);
                var below = increasing ? f(mid) < target : f(mid) > target;
                if (below)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            if (lo > 0 && Math.Abs(f(lo - 1) - target) < Math.Abs(f(lo) - target))
            {
                lo--;
            }

            return lo == reserved ? lo + 1 : lo;
        }
    }
}
