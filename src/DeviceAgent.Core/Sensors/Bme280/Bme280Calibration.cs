using System.Buffers.Binary;

namespace DeviceAgent.Sensors.Bme280;

/// <summary>
/// Factory trimming parameters stored in the BME280's NVM (datasheet §4.2.2, Table 16) and the
/// datasheet's integer compensation formulas (§4.2.3): 32-bit for temperature and humidity,
/// 64-bit for pressure. The same T/P formulas are used by the BMP280 (BMP280 datasheet §3.11.3).
/// </summary>
public sealed record Bme280Calibration(
    ushort DigT1, short DigT2, short DigT3,
    ushort DigP1, short DigP2, short DigP3, short DigP4, short DigP5, short DigP6, short DigP7, short DigP8, short DigP9,
    byte DigH1, short DigH2, byte DigH3, short DigH4, short DigH5, sbyte DigH6)
{
    /// <summary>Number of bytes in the 0x88..0xA1 block (dig_T1 .. dig_H1).</summary>
    public const int TpBlockLength = 26;

    /// <summary>Number of bytes in the 0xE1..0xE7 block (dig_H2 .. dig_H6).</summary>
    public const int HumidityBlockLength = 7;

    /// <summary>Decodes the two trimming blocks read from 0x88..0xA1 and 0xE1..0xE7 (Table 16).</summary>
    public static Bme280Calibration Parse(ReadOnlySpan<byte> tp, ReadOnlySpan<byte> h)
    {
        if (tp.Length != TpBlockLength)
        {
            throw new ArgumentException($"The 0x88..0xA1 block has {TpBlockLength} bytes, not {tp.Length}.", nameof(tp));
        }

        if (h.Length != HumidityBlockLength)
        {
            throw new ArgumentException($"The 0xE1..0xE7 block has {HumidityBlockLength} bytes, not {h.Length}.", nameof(h));
        }

        // All 16-bit words are little endian ("LSB first", Table 16).
        static short S16(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadInt16LittleEndian(b[offset..]);

        // dig_H4 = 0xE4[7:0] / 0xE5[3:0] and dig_H5 = 0xE6[7:0] / 0xE5[7:4]: signed 12-bit values whose
        // most significant byte is sign-extended (Table 16).
        var h4 = (short)(((sbyte)h[3] << 4) | (h[4] & 0x0F));
        var h5 = (short)(((sbyte)h[5] << 4) | (h[4] >> 4));
        return new Bme280Calibration(
            BinaryPrimitives.ReadUInt16LittleEndian(tp), S16(tp, 2), S16(tp, 4),
            BinaryPrimitives.ReadUInt16LittleEndian(tp[6..]), S16(tp, 8), S16(tp, 10), S16(tp, 12), S16(tp, 14),
            S16(tp, 16), S16(tp, 18), S16(tp, 20), S16(tp, 22),
            tp[25], S16(h, 0), h[2], h4, h5, (sbyte)h[6]);
    }

    /// <summary>
    /// BME280_compensate_T_int32 (§4.2.3): returns t_fine (used by P and H) and the temperature in 0.01 °C.
    /// </summary>
    public (int TFine, int CentiCelsius) CompensateTemperature(int adcT)
    {
        var var1 = (((adcT >> 3) - (DigT1 << 1)) * DigT2) >> 11;
        var var2 = (((((adcT >> 4) - DigT1) * ((adcT >> 4) - DigT1)) >> 12) * DigT3) >> 14;
        var tFine = var1 + var2;
        return (tFine, ((tFine * 5) + 128) >> 8);
    }

    /// <summary>
    /// BME280_compensate_P_int64 (§4.2.3): pressure in Pa as unsigned Q24.8 (24 integer and 8 fractional bits).
    /// Returns 0 when dig_P1 makes the divisor zero ("avoid exception caused by division by zero").
    /// </summary>
    public uint CompensatePressureQ24_8(int adcP, int tFine)
    {
        long var1 = (long)tFine - 128000;
        var var2 = var1 * var1 * DigP6;
        var2 += (var1 * DigP5) << 17;
        var2 += (long)DigP4 << 35;
        var1 = ((var1 * var1 * DigP3) >> 8) + ((var1 * DigP2) << 12);
        var1 = (((1L << 47) + var1) * DigP1) >> 33;
        if (var1 == 0)
        {
            return 0;
        }

        long p = 1048576 - adcP;
        p = (((p << 31) - var2) * 3125) / var1;
        var1 = (DigP9 * (p >> 13) * (p >> 13)) >> 25;
        var2 = (DigP8 * p) >> 19;
        p = ((p + var1 + var2) >> 8) + ((long)DigP7 << 4);
        return (uint)p;
    }

    /// <summary>bme280_compensate_H_int32 (§4.2.3): relative humidity in %RH as unsigned Q22.10.</summary>
    public uint CompensateHumidityQ22_10(int adcH, int tFine)
    {
        var v = tFine - 76800;
        v = ((((adcH << 14) - (DigH4 << 20) - (DigH5 * v)) + 16384) >> 15)
            * (((((((v * DigH6) >> 10) * (((v * DigH3) >> 11) + 32768)) >> 10) + 2097152) * DigH2 + 8192) >> 14);
        v -= ((((v >> 15) * (v >> 15)) >> 7) * DigH1) >> 4;
        v = Math.Clamp(v, 0, 419430400);
        return (uint)(v >> 12);
    }
}
