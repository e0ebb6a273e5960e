using System.Device.I2c;

namespace Simulators.Buses;

/// <summary>
/// An <see cref="I2cDevice"/> backed by a register map instead of /dev/i2c-N, so the real drivers run
/// unchanged. Implements the usual register protocol: a write's first byte sets the register pointer,
/// reads auto-increment from it. Faults can be injected: the next N transfers (or all of them while
/// <see cref="Disconnected"/>) throw <see cref="IOException"/> as the Linux driver does when the chip
/// does not acknowledge (errno 121, EREMOTEIO).
/// </summary>
public abstract class SimulatedI2cDevice : I2cDevice
{
    /// <summary>errno EREMOTEIO: no ACK from the device.</summary>
    public const int RemoteIoError = 121;

    private readonly Lock _gate = new();
    private int _failTransfers;
    private int _passBeforeFailing;

    protected SimulatedI2cDevice(int busId, int address) =>
        ConnectionSettings = new I2cConnectionSettings(busId, address);

    public override I2cConnectionSettings ConnectionSettings { get; }

    /// <summary>While true every transfer fails, like a chip that lost power or a loose wire.</summary>
    public bool Disconnected { get; set; }

    /// <summary>Number of transfers performed (successful or not).</summary>
    public int Transfers { get; private set; }

    /// <summary>The register the next read starts from.</summary>
    protected byte RegisterPointer { get; set; }

    /// <summary>Makes the next <paramref name="count"/> transfers throw <see cref="IOException"/>.</summary>
    public void FailNextTransfers(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_gate)
        {
            _failTransfers = count;
        }
    }

    /// <summary>Lets the next <paramref name="passing"/> transfers through, then fails <paramref name="failing"/> (a fault in the middle of a driver's sequence).</summary>
    public void FailTransfersAfter(int passing, int failing)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(passing);
        ArgumentOutOfRangeException.ThrowIfNegative(failing);
        lock (_gate)
        {
            _passBeforeFailing = passing;
            _failTransfers = failing;
        }
    }

    public override void Read(Span<byte> buffer)
    {
        lock (_gate)
        {
            BeginTransfer();
            ReadCore(buffer);
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
        {
            BeginTransfer();
            WriteCore(buffer);
        }
    }

    public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        lock (_gate)
        {
            BeginTransfer();
            WriteCore(writeBuffer);
            ReadCore(readBuffer);
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

    /// <summary>Called after a read of <paramref name="length"/> bytes starting at <paramref name="start"/>.</summary>
    protected virtual void OnReadCompleted(byte start, int length)
    {
    }

    /// <summary>
    /// Data bytes after the register address. The default auto-increments the pointer (ADXL345, most chips);
    /// the BME280 overrides it with its register/data pairs.
    /// </summary>
    protected virtual void WriteData(ReadOnlySpan<byte> data)
    {
        foreach (var value in data)
        {
            WriteRegister(RegisterPointer, value);
            RegisterPointer++;
        }
    }

    private void BeginTransfer()
    {
        Transfers++;
        if (_passBeforeFailing > 0)
        {
            _passBeforeFailing--;
            return;
        }

        if (Disconnected || _failTransfers > 0)
        {
            if (_failTransfers > 0)
            {
                _failTransfers--;
            }

            // Same shape as System.Device.I2c's UnixI2cBus message.
            throw new IOException($"Error {RemoteIoError} performing I2C data transfer.", RemoteIoError);
        }
    }

    private void ReadCore(Span<byte> buffer)
    {
        var start = RegisterPointer;
        for (var i = 0; i < buffer.Length; i++)
        {
            buffer[i] = ReadRegister(RegisterPointer);
            RegisterPointer++;
        }

        OnReadCompleted(start, buffer.Length);
    }

    private void WriteCore(ReadOnlySpan<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }

        RegisterPointer = buffer[0];
        WriteData(buffer[1..]);
    }
}
