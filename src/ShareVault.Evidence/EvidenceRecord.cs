using System.Security.Cryptography;

namespace ShareVault.Evidence;

/// <summary>
/// The decoded payload of one evidence record: who, which sequence number, when, the hash of the
/// device's previous record, and what the sensors saw. Times have millisecond precision on the wire.
/// </summary>
public sealed class EvidenceRecord
{
    /// <summary>Creates a record; validates what the wire format can carry.</summary>
    public EvidenceRecord(
        string deviceId,
        long sequence,
        DateTimeOffset time,
        ReadOnlyMemory<byte> previousHash,
        IReadOnlyList<Reading> readings,
        IReadOnlyList<SensorFault>? faults = null)
    {
        ArgumentNullException.ThrowIfNull(readings);
        if (!Identifier.IsValid(deviceId))
        {
            throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        if (previousHash.Length is not (0 or EvidenceFormat.HashLength))
        {
            throw new ArgumentException("The previous hash is empty (first record) or a 32-byte SHA-256", nameof(previousHash));
        }

        if (time.ToUnixTimeMilliseconds() < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(time), "Evidence times are after 1970-01-01");
        }

        foreach (var reading in readings)
        {
            ArgumentNullException.ThrowIfNull(reading, nameof(readings));
            if (!double.IsFinite(reading.Value))
            {
                throw new ArgumentException($"Reading '{reading.Name}' has a non-finite value", nameof(readings));
            }

            if (string.IsNullOrEmpty(reading.Name) || reading.Time.ToUnixTimeMilliseconds() < 0)
            {
                throw new ArgumentException("Every reading needs a name and a time after 1970-01-01", nameof(readings));
            }
        }

        DeviceId = deviceId;
        Sequence = sequence;
        Time = time;
        PreviousHash = previousHash.ToArray();
        Readings = readings.ToArray();
        Faults = faults?.ToArray() ?? [];
    }

    /// <summary>Device id, also the COSE <c>kid</c>.</summary>
    public string DeviceId { get; }

    /// <summary>Per-device sequence number: strictly increasing, never reused.</summary>
    public long Sequence { get; }

    /// <summary>When the record was made (device clock).</summary>
    public DateTimeOffset Time { get; }

    /// <summary>SHA-256 of the device's previous record (its full COSE bytes); empty for the first record.</summary>
    public ReadOnlyMemory<byte> PreviousHash { get; }

    /// <summary>What the sensors measured.</summary>
    public IReadOnlyList<Reading> Readings { get; }

    /// <summary>Sensors that failed to produce readings for this record.</summary>
    public IReadOnlyList<SensorFault> Faults { get; }

    /// <summary>True when this is the first record of its chain (no previous hash).</summary>
    public bool IsChainStart => PreviousHash.IsEmpty;

    /// <summary>SHA-256 of a record's full COSE_Sign1 bytes: the chain link and receipt hash.</summary>
    public static byte[] Hash(ReadOnlySpan<byte> cose) => SHA256.HashData(cose);

    /// <summary>True when <paramref name="previousCose"/> is the record this one chains to.</summary>
    public bool Follows(ReadOnlySpan<byte> previousCose)
    {
        if (PreviousHash.Length != EvidenceFormat.HashLength)
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[EvidenceFormat.HashLength];
        SHA256.HashData(previousCose, hash);
        return CryptographicOperations.FixedTimeEquals(hash, PreviousHash.Span);
    }

    public override string ToString() =>
        $"evidence {DeviceId}#{Sequence} at {Time:O}: {Readings.Count} reading(s), {Faults.Count} fault(s)";
}
