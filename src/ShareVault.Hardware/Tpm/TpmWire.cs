using System.Buffers.Binary;

namespace ShareVault.Hardware.Tpm;

/// <summary>TPM 2.0 constants used by ShareVault (TPM 2.0 Part 2: Structures).</summary>
internal static class TpmConst
{
    // TPM_ALG_ID, Part 2 §6.3.
    public const ushort AlgRsa = 0x0001;
    public const ushort AlgSha256 = 0x000B;
    public const ushort AlgAes = 0x0006;
    public const ushort AlgKeyedHash = 0x0008;
    public const ushort AlgNull = 0x0010;
    public const ushort AlgEcdsa = 0x0018;
    public const ushort AlgEcc = 0x0023;
    public const ushort AlgCfb = 0x0043;

    // TPM_ECC_CURVE, Part 2 §6.4.
    public const ushort EccNistP256 = 0x0003;

    // TPMA_OBJECT, Part 2 §8.3.
    public const uint FixedTpm = 0x00000002;
    public const uint FixedParent = 0x00000010;
    public const uint SensitiveDataOrigin = 0x00000020;
    public const uint UserWithAuth = 0x00000040;
    public const uint AdminWithPolicy = 0x00000080;
    public const uint NoDa = 0x00000400;
    public const uint Restricted = 0x00010000;
    public const uint Decrypt = 0x00020000;
    public const uint Sign = 0x00040000;

    // TPM_SE, Part 2 §6.11.
    public const byte SessionHmac = 0x00;
    public const byte SessionPolicy = 0x01;
    public const byte SessionTrial = 0x03;

    // TPMA_SESSION, Part 2 §8.4.
    public const byte SessionContinue = 0x01;
    public const byte SessionDecrypt = 0x20;
    public const byte SessionEncrypt = 0x40;

    // TPM_ST, Part 2 §6.9, and TPM_RH, §7.4.
    public const ushort StHashCheck = 0x8024;
    public const uint RhNull = 0x40000007;

    /// <summary>The largest TPM2B_SENSITIVE_DATA a TPM must accept for a sealed object (Part 2 §11.1.14, MAX_SYM_DATA).</summary>
    public const int MaxSealedBytes = 128;
}

/// <summary>Writes TPM wire format: big-endian integers, TPM2B = UINT16 size then bytes (Part 1 §18, Part 2 §10.4).</summary>
internal sealed class TpmWriter
{
    private readonly List<byte> _bytes = new(256);

    public TpmWriter U8(byte value)
    {
        _bytes.Add(value);
        return this;
    }

    public TpmWriter U16(ushort value)
    {
        _bytes.Add((byte)(value >> 8));
        _bytes.Add((byte)value);
        return this;
    }

    public TpmWriter U32(uint value)
    {
        U16((ushort)(value >> 16));
        return U16((ushort)value);
    }

    public TpmWriter Bytes(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            _bytes.Add(b);
        }

        return this;
    }

    public TpmWriter Tpm2b(ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "A TPM2B holds at most 65535 bytes");
        }

        U16((ushort)value.Length);
        return Bytes(value);
    }

    /// <summary>Wraps already-written content as a TPM2B (a structure carried with its size, e.g. TPM2B_PUBLIC).</summary>
    public static byte[] Sized(TpmWriter inner)
    {
        var body = inner.ToArray();
        return new TpmWriter().Tpm2b(body).ToArray();
    }

    public byte[] ToArray() => [.. _bytes];
}

/// <summary>Reads TPM wire format; a short or malformed buffer throws <see cref="FormatException"/>.</summary>
internal ref struct TpmReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _offset;

    public TpmReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _offset = 0;
    }

    public readonly int Remaining => _data.Length - _offset;

    public ushort U16()
    {
        var value = BinaryPrimitives.ReadUInt16BigEndian(Take(2));
        return value;
    }

    public uint U32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    public byte U8() => Take(1)[0];

    public ReadOnlySpan<byte> Tpm2b() => Take(U16());

    public ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw new FormatException($"TPM structure truncated: wanted {count} bytes at offset {_offset}, {Remaining} left");
        }

        var slice = _data.Slice(_offset, count);
        _offset += count;
        return slice;
    }
}
