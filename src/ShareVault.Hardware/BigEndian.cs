using System.Numerics;

namespace ShareVault.Hardware;

/// <summary>Unsigned big-endian integer conversions (RFC 8017 §4.1 I2OSP / OS2IP).</summary>
public static class BigEndian
{
    public static BigInteger ToInteger(ReadOnlySpan<byte> bytes) => new(bytes, isUnsigned: true, isBigEndian: true);

    /// <summary>I2OSP: the integer as exactly <paramref name="length"/> bytes.</summary>
    public static byte[] ToBytes(BigInteger value, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value.Sign);
        var raw = value.ToByteArray(isUnsigned: true, isBigEndian: true);
        if (raw.Length > length)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "Integer too large for the requested length");
        }

        if (raw.Length == length)
        {
            return raw;
        }

        var result = new byte[length];
        raw.CopyTo(result, length - raw.Length);
        return result;
    }

    public static byte[] ToBytes(BigInteger value) => value.ToByteArray(isUnsigned: true, isBigEndian: true);

    public static int ByteLength(BigInteger value) => (int)((value.GetBitLength() + 7) / 8);
}
