using System.Device.Spi;

namespace Simulators.Buses;

/// <summary>
/// A <see cref="SpiDevice"/> backed by a register map instead of /dev/spidevB.C, so the real drivers
/// run unchanged. Implements the register protocol of Analog Devices' SPI sensors (ADXL345 datasheet
/// "SPI"): the first byte of a transfer is the address with bit 7 = read and bit 6 = multi-byte
/// (the address auto-increments); during the address byte the chip clocks out nothing meaningful
/// (0x00 here). Faults can be injected: the next N transfers (or all while <see cref="Disconnected"/>)
/// throw <see cref="IOException"/>, as the Linux spidev ioctl does when the controller fails.
/// </summary>
public abstract class SimulatedSpiDevice : SpiDevice
{
    private const byte ReadBit = 0x80, MultiByteBit = 0x40, AddressMask = 0x3F;

    private readonly Lock _gate = new();
    private int _failTransfers;

    protected SimulatedSpiDevice(SpiConnectionSettings settings) => ConnectionSettings = settings;

    public override SpiConnectionSettings ConnectionSettings { get; }

    /// <summary>While true every transfer fails, like a chip that lost power or a loose wire.</summary>
    public bool Disconnected { get; set; }

    /// <summary>Number of transfers performed (successful or not).</summary>
    public int Transfers { get; private set; }

    /// <summary>Makes the next <paramref name="count"/> transfers throw <see cref="IOException"/>.</summary>
    public void FailNextTransfers(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_gate)
        {
            _failTransfers = count;
        }
    }

    /// <summary>Clocking bytes out without an address byte first reads nothing defined: zeros.</summary>
    public override void Read(Span<byte> buffer)
    {
        lock (_gate)
        {
            BeginTransfer();
            buffer.Clear();
        }
    }

    public override byte ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        Read(one);
        return one[0];
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
        {
            BeginTransfer();
            Transfer(buffer, []);
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override void TransferFullDuplex(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        if (writeBuffer.Length != readBuffer.Length)
        {
            throw new ArgumentException("A full-duplex transfer clocks as many bytes in as out.", nameof(readBuffer));
        }

        lock (_gate)
        {
            BeginTransfer();
            Transfer(writeBuffer, readBuffer);
        }
    }

    /// <summary>Runs <paramref name="action"/> under the bus lock, so world updates never interleave with a transfer.</summary>
    protected void Locked(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        lock (_gate)
        {
            action();
        }
    }

    protected abstract byte ReadRegister(byte address);

    protected abstract void WriteRegister(byte address, byte value);

    /// <summary>Called after a read of <paramref name="length"/> data bytes starting at <paramref name="start"/>.</summary>
    protected virtual void OnReadCompleted(byte start, int length)
    {
    }

    private void Transfer(ReadOnlySpan<byte> write, Span<byte> read)
    {
        if (write.IsEmpty)
        {
            return;
        }

        var command = write[0];
        var address = (byte)(command & AddressMask);
        var multiple = (command & MultiByteBit) != 0;
        if (!read.IsEmpty)
        {
            read[0] = 0;
        }

        var data = write.Length - 1;
        if ((command & ReadBit) != 0)
        {
            for (var i = 0; i < data; i++)
            {
                var value = ReadRegister((byte)(multiple ? address + i : address));
                if (i + 1 < read.Length)
                {
                    read[i + 1] = value;
                }
            }

            OnReadCompleted(address, multiple ? data : Math.Min(data, 1));
            return;
        }

        for (var i = 0; i < data; i++)
        {
            WriteRegister((byte)(multiple ? address + i : address), write[i + 1]);
        }
    }

    private void BeginTransfer()
    {
        Transfers++;
        if (Disconnected || _failTransfers > 0)
        {
            if (_failTransfers > 0)
            {
                _failTransfers--;
            }

            // The shape of System.Device.Spi's UnixSpiDevice failure (the SPI_IOC_MESSAGE ioctl returned -1).
            throw new IOException("Error 5 performing SPI data transfer.", 5);
        }
    }
}
