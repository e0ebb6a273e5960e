using System.Runtime.InteropServices;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// Native buffers for one TSS call. Each input is built in wire format in C# and turned into the
/// native structure by its <c>Tss2_MU_*_Unmarshal</c>; buffers are generously sized (every
/// structure ShareVault passes is well under <see cref="BufferSize"/>), wiped and freed on dispose,
/// because some hold auth values or data to seal.
/// </summary>
internal sealed unsafe class NativeArena : IDisposable
{
    /// <summary>Larger than sizeof any TPM2B/TPMT/TPML ShareVault passes (TPM2B_PRIVATE, the largest, is about 1.5 KiB in tpm2-tss 3.x).</summary>
    public const int BufferSize = 4096;

    private readonly List<nint> _buffers = [];

    public void* In(byte[] wire, delegate*<byte*, nuint, nuint*, void*, uint> unmarshal, string typeName)
    {
        var dest = NativeMemory.AllocZeroed(BufferSize);
        _buffers.Add((nint)dest);
        nuint offset = 0;
        uint rc;
        fixed (byte* p = wire)
        {
            rc = unmarshal(p, (nuint)wire.Length, &offset, dest);
        }

        if (rc != 0 || offset != (nuint)wire.Length)
        {
            throw new InvalidOperationException($"Tss2_MU_{typeName}_Unmarshal rejected a ShareVault-built structure (rc 0x{rc:X}, {offset} of {wire.Length} bytes)");
        }

        return dest;
    }

    /// <summary>
    /// Marshals an ESYS-allocated output to wire bytes and frees it with Esys_Free; the first
    /// <paramref name="wipeBytes"/> bytes of the native structure are wiped first (secret outputs).
    /// </summary>
    public static byte[] Out(void* native, delegate*<void*, byte*, nuint, nuint*, uint> marshal, string typeName, int wipeBytes = 0)
    {
        if (native is null)
        {
            throw new InvalidOperationException($"ESYS returned no {typeName}");
        }

        var buffer = new byte[BufferSize];
        try
        {
            nuint offset = 0;
            uint rc;
            fixed (byte* p = buffer)
            {
                rc = marshal(native, p, (nuint)buffer.Length, &offset);
            }

            if (rc != 0)
            {
                throw new InvalidOperationException($"Tss2_MU_{typeName}_Marshal failed (rc 0x{rc:X})");
            }

            return buffer.AsSpan(0, (int)offset).ToArray();
        }
        finally
        {
            // Outputs such as unsealed data are secret: wipe both copies we do not return.
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(buffer);
            NativeMemory.Clear(native, (nuint)wipeBytes);
            TssNative.Esys_Free(native);
        }
    }

    public void Dispose()
    {
        foreach (var buffer in _buffers)
        {
            NativeMemory.Clear((void*)buffer, BufferSize);
            NativeMemory.Free((void*)buffer);
        }

        _buffers.Clear();
    }
}
