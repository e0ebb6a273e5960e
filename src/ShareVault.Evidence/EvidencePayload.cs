using System.Formats.Cbor;
using System.Text;

namespace ShareVault.Evidence;

/// <summary>
/// The CBOR payload of an evidence record (docs/evidence-format.md §Payload): a map with small
/// unsigned-integer keys, deterministically encoded (RFC 8949 §4.2.1: definite lengths, shortest
/// integer and float forms, keys in bytewise order). Readings use the SenML CBOR labels
/// (RFC 8428 §6: n = 0, u = 1, v = 2, t = 6).
/// </summary>
public static class EvidencePayload
{
    internal const int KeyVersion = 1;
    internal const int KeyDevice = 2;
    internal const int KeySequence = 3;
    internal const int KeyTime = 4;
    internal const int KeyPrevious = 5;
    internal const int KeyReadings = 6;
    internal const int KeyFaults = 7;

    internal const int SenMLName = 0;
    internal const int SenMLUnit = 1;
    internal const int SenMLValue = 2;
    internal const int SenMLTime = 6;

    internal const int FaultSensor = 0;
    internal const int FaultMessage = 1;

    // Largest time DateTimeOffset can hold (9999-12-31T23:59:59.999Z), in Unix milliseconds.
    private const long MaxUnixMilliseconds = 253_402_300_799_999;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Encodes a record's payload. <paramref name="version"/> exists so tests can forge other versions.</summary>
    public static byte[] Encode(EvidenceRecord record, int version = EvidenceFormat.Version)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentOutOfRangeException.ThrowIfNegative(version);

        // Canonical mode makes the writer refuse anything that is not deterministic (RFC 8949 §4.2)
        // and write floats in their shortest exact form.
        var writer = new CborWriter(CborConformanceMode.Canonical, convertIndefiniteLengthEncodings: false);
        writer.WriteStartMap(7);
        writer.WriteUInt32(KeyVersion);
        writer.WriteUInt32((uint)version);
        writer.WriteUInt32(KeyDevice);
        writer.WriteTextString(record.DeviceId);
        writer.WriteUInt32(KeySequence);
        writer.WriteUInt64((ulong)record.Sequence);
        writer.WriteUInt32(KeyTime);
        writer.WriteUInt64((ulong)record.Time.ToUnixTimeMilliseconds());
        writer.WriteUInt32(KeyPrevious);
        writer.WriteByteString(record.PreviousHash.Span);
        writer.WriteUInt32(KeyReadings);
        writer.WriteStartArray(record.Readings.Count);
        foreach (var reading in record.Readings)
        {
            writer.WriteStartMap(reading.Unit is null ? 3 : 4);
            writer.WriteUInt32(SenMLName);
            writer.WriteTextString(reading.Name);
            if (reading.Unit is not null)
            {
                writer.WriteUInt32(SenMLUnit);
                writer.WriteTextString(reading.Unit);
            }

            writer.WriteUInt32(SenMLValue);
            writer.WriteDouble(reading.Value);
            writer.WriteUInt32(SenMLTime);
            writer.WriteUInt64((ulong)reading.Time.ToUnixTimeMilliseconds());
            writer.WriteEndMap();
        }

        writer.WriteEndArray();
        writer.WriteUInt32(KeyFaults);
        writer.WriteStartArray(record.Faults.Count);
        foreach (var fault in record.Faults)
        {
            writer.WriteStartMap(2);
            writer.WriteUInt32(FaultSensor);
            writer.WriteTextString(fault.SensorId);
            writer.WriteUInt32(FaultMessage);
            writer.WriteTextString(fault.Message);
            writer.WriteEndMap();
        }

        writer.WriteEndArray();
        writer.WriteEndMap();
        return writer.Encode();
    }

    /// <summary>Decodes untrusted payload bytes. Never throws on hostile input.</summary>
    internal static (EvidenceRecord? Record, EvidenceRejection Reason, string Detail) Decode(ReadOnlyMemory<byte> payload, EvidenceLimits limits)
    {
        try
        {
            return DecodeCore(payload, limits);
        }
        catch (Exception e) when (e is CborContentException or InvalidOperationException or FormatException
                                      or OverflowException or ArgumentException or DecoderFallbackException)
        {
            // CborReader reports malformed or non-canonical data with these (DecoderFallbackException
            // for invalid UTF-8 is an ArgumentException, listed for clarity).
            return (null, EvidenceRejection.MalformedCbor, "payload is not valid deterministic CBOR: " + e.GetType().Name);
        }
    }

    private static (EvidenceRecord?, EvidenceRejection, string) DecodeCore(ReadOnlyMemory<byte> payload, EvidenceLimits limits)
    {
        var reader = new CborReader(payload, CborConformanceMode.Canonical);
        if (reader.PeekState() != CborReaderState.StartMap)
        {
            return Malformed("payload is not a CBOR map");
        }

        var entries = reader.ReadStartMap();
        if (entries is null)
        {
            return Malformed("payload map has indefinite length");
        }

        // Key 1 (version) sorts first in deterministic order, so a payload of another version is
        // recognised before anything version-specific is parsed.
        if (entries < 1 || reader.ReadUInt32() != KeyVersion)
        {
            return Malformed("payload does not start with the version (key 1)");
        }

        var version = reader.ReadUInt64();
        if (version != EvidenceFormat.Version)
        {
            return (null, EvidenceRejection.WrongVersion, $"payload version {version}, this verifier reads version {EvidenceFormat.Version}");
        }

        if (entries != 7)
        {
            return Malformed($"payload map has {entries} entries, version 1 has 7");
        }

        ExpectKey(reader, KeyDevice);
        var deviceId = ReadText(reader, EvidenceFormat.MaxDeviceIdLength);
        if (!Identifier.IsValid(deviceId))
        {
            return Malformed("payload device id is not a valid device id");
        }

        ExpectKey(reader, KeySequence);
        var sequence = reader.ReadUInt64();
        if (sequence > long.MaxValue)
        {
            return Malformed("sequence number out of range");
        }

        ExpectKey(reader, KeyTime);
        if (!TryReadTime(reader, out var time))
        {
            return Malformed("record time out of range");
        }

        ExpectKey(reader, KeyPrevious);
        var previous = reader.ReadByteString();
        if (previous.Length is not (0 or EvidenceFormat.HashLength))
        {
            return Malformed($"previous hash has {previous.Length} bytes, expected 0 or 32");
        }

        ExpectKey(reader, KeyReadings);
        var readingCount = reader.ReadStartArray();
        if (readingCount is null)
        {
            return Malformed("readings array has indefinite length");
        }

        if (readingCount > limits.MaxReadings)
        {
            return (null, EvidenceRejection.LimitExceeded, $"{readingCount} readings, at most {limits.MaxReadings} allowed");
        }

        var readings = new List<Reading>(readingCount.Value);
        for (var i = 0; i < readingCount; i++)
        {
            var fields = reader.ReadStartMap();
            if (fields is not (3 or 4))
            {
                return Malformed($"reading {i} has {fields?.ToString() ?? "indefinite"} fields, expected 3 or 4");
            }

            ExpectKey(reader, SenMLName);
            var name = ReadText(reader, limits.MaxStringBytes);
            string? unit = null;
            if (fields == 4)
            {
                ExpectKey(reader, SenMLUnit);
                unit = ReadText(reader, limits.MaxStringBytes);
            }

            ExpectKey(reader, SenMLValue);
            if (reader.PeekState() is not (CborReaderState.HalfPrecisionFloat or CborReaderState.SinglePrecisionFloat or CborReaderState.DoublePrecisionFloat))
            {
                return Malformed($"reading {i} value is not a float");
            }

            var value = reader.ReadDouble();
            if (!double.IsFinite(value))
            {
                return Malformed($"reading {i} value is not finite");
            }

            ExpectKey(reader, SenMLTime);
            if (!TryReadTime(reader, out var readingTime))
            {
                return Malformed($"reading {i} time out of range");
            }

            reader.ReadEndMap();
            if (name is null || unit is null && fields == 4)
            {
                return (null, EvidenceRejection.LimitExceeded, $"reading {i} has a string longer than {limits.MaxStringBytes} bytes");
            }

            if (name.Length == 0)
            {
                return Malformed($"reading {i} has an empty name");
            }

            // A record speaks for the moment it was made: a reading taken long before it (or after it)
            // would let one record claim a duration on its own (two readings ten minutes apart).
            if (readingTime < time - limits.MaxReadingAge || readingTime > time + limits.MaxReadingLead)
            {
                return (null, EvidenceRejection.ReadingOutsideRecordTime,
                    $"reading {i} ('{name}') is timed {(readingTime - time).TotalSeconds:0.###} s from its record; "
                    + $"readings lie within {limits.MaxReadingAge.TotalSeconds:0.###} s before and {limits.MaxReadingLead.TotalSeconds:0.###} s after the record's time");
            }

            readings.Add(new Reading(name, unit, value, readingTime));
        }

        reader.ReadEndArray();
        ExpectKey(reader, KeyFaults);
        var faultCount = reader.ReadStartArray();
        if (faultCount is null)
        {
            return Malformed("faults array has indefinite length");
        }

        if (faultCount > limits.MaxFaults)
        {
            return (null, EvidenceRejection.LimitExceeded, $"{faultCount} faults, at most {limits.MaxFaults} allowed");
        }

        var faults = new List<SensorFault>(faultCount.Value);
        for (var i = 0; i < faultCount; i++)
        {
            if (reader.ReadStartMap() != 2)
            {
                return Malformed($"fault {i} is not a 2-entry map");
            }

            ExpectKey(reader, FaultSensor);
            var sensor = ReadText(reader, limits.MaxStringBytes);
            ExpectKey(reader, FaultMessage);
            var message = ReadText(reader, limits.MaxStringBytes);
            reader.ReadEndMap();
            if (sensor is null || message is null)
            {
                return (null, EvidenceRejection.LimitExceeded, $"fault {i} has a string longer than {limits.MaxStringBytes} bytes");
            }

            faults.Add(new SensorFault(sensor, message));
        }

        reader.ReadEndArray();
        reader.ReadEndMap();
        if (reader.BytesRemaining != 0)
        {
            return Malformed($"{reader.BytesRemaining} bytes after the payload map");
        }

        if (deviceId is null)
        {
            return Malformed("payload device id is missing");
        }

        return (new EvidenceRecord(deviceId, (long)sequence, time, previous, readings, faults), EvidenceRejection.None, "valid");
    }

    private static (EvidenceRecord?, EvidenceRejection, string) Malformed(string detail) =>
        (null, EvidenceRejection.MalformedCbor, detail);

    private static void ExpectKey(CborReader reader, int key)
    {
        var actual = reader.ReadUInt32();
        if (actual != key)
        {
            throw new FormatException($"expected key {key}, found {actual}");
        }
    }

    /// <summary>Reads a text string, returning null when it is longer than the limit (checked before decoding it).</summary>
    private static string? ReadText(CborReader reader, int maxBytes)
    {
        var encoded = reader.ReadDefiniteLengthTextStringBytes();
        return encoded.Length <= maxBytes ? StrictUtf8.GetString(encoded.Span) : null;
    }

    private static bool TryReadTime(CborReader reader, out DateTimeOffset time)
    {
        var ms = reader.ReadUInt64();
        if (ms > MaxUnixMilliseconds)
        {
            time = default;
            return false;
        }

        time = DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
        return true;
    }
}
