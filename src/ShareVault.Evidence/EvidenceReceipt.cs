using System.Text.Json;

namespace ShareVault.Evidence;

/// <summary>What the claims service did with a record.</summary>
public enum ReceiptStatus
{
    /// <summary>Verified and stored durably. The device may forget the record.</summary>
    Stored,

    /// <summary>A record with this hash was already stored. The device may forget it.</summary>
    Duplicate,

    /// <summary>Refused for good (<see cref="EvidenceReceipt.Reason"/> says why); resending it cannot help.</summary>
    Rejected,
}

/// <summary>
/// The service's answer to one record, published (QoS 1, not retained) on
/// <see cref="EvidenceTopics.Receipts"/> as UTF-8 JSON:
/// <c>{"device":"pi-1","seq":42,"hash":"&lt;64 hex&gt;","status":"stored","reason":null}</c>.
/// <c>hash</c> is the SHA-256 of the COSE bytes received (lowercase hex); devices match receipts by
/// it. <c>seq</c> is null when the record could not be decoded; <c>reason</c> is null unless rejected.
/// </summary>
/// <remarks>
/// A device that publishes its evidence with the MQTT 5 user property <see cref="ListProperty"/> =
/// <see cref="ListValue"/> may instead get one message per committed batch holding all of its
/// receipts of that batch, as a JSON array of those objects in stream order (at most
/// <see cref="MaxListLength"/>; <see cref="EncodeList"/>, <see cref="TryDecodeList"/>). A device that
/// does not say so gets one object per record, as before.
/// </remarks>
public sealed record EvidenceReceipt(string DeviceId, long? Sequence, string Hash, ReceiptStatus Status, string? Reason = null)
{
    /// <summary>Receipts larger than this are ignored when decoding.</summary>
    public const int MaxEncodedBytes = 4096;

    /// <summary>Most receipts in one list message.</summary>
    public const int MaxListLength = 256;

    /// <summary>Receipt lists larger than this are ignored when decoding.</summary>
    public const int MaxEncodedListBytes = MaxListLength * 512;

    /// <summary>The MQTT 5 user property on an evidence PUBLISH by which a device accepts receipt lists.</summary>
    public const string ListProperty = "receipts";

    /// <summary>The value of <see cref="ListProperty"/> that accepts receipt lists.</summary>
    public const string ListValue = "list";

    /// <summary><see cref="ListValue"/> in UTF-8, as MQTT user properties carry it.</summary>
    public static ReadOnlyMemory<byte> ListValueUtf8 { get; } = System.Text.Encoding.UTF8.GetBytes(ListValue);

    /// <summary>True when an MQTT user property (name, UTF-8 value) asks for receipt lists.</summary>
    public static bool AsksForList(string name, ReadOnlySpan<byte> value) => name == ListProperty && value.SequenceEqual(ListValueUtf8.Span);

    /// <summary>A receipt for the given COSE bytes.</summary>
    public static EvidenceReceipt For(string deviceId, long? sequence, ReadOnlySpan<byte> cose, ReceiptStatus status, string? reason = null) =>
        new(deviceId, sequence, Convert.ToHexStringLower(EvidenceRecord.Hash(cose)), status, reason);

    /// <summary>True when this receipt lets the device delete the record from its outbox.</summary>
    public bool ReleasesRecord => Status is ReceiptStatus.Stored or ReceiptStatus.Duplicate;

    public byte[] Encode()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            Write(json);
        }

        return buffer.ToArray();
    }

    /// <summary>One device's receipts as one message: a JSON array of <see cref="Encode"/>'s objects, in the given order.</summary>
    public static byte[] EncodeList(IReadOnlyList<EvidenceReceipt> receipts)
    {
        ArgumentNullException.ThrowIfNull(receipts);
        ArgumentOutOfRangeException.ThrowIfZero(receipts.Count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(receipts.Count, MaxListLength);
        if (receipts.Any(r => r.DeviceId != receipts[0].DeviceId))
        {
            throw new ArgumentException("A receipt list answers one device", nameof(receipts));
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            foreach (var receipt in receipts)
            {
                receipt.Write(json);
            }

            json.WriteEndArray();
        }

        return buffer.ToArray();
    }

    /// <summary>
    /// Decodes an untrusted receipts message, either one receipt (<see cref="Encode"/>) or a list
    /// (<see cref="EncodeList"/>) of receipts for one device; false (never an exception) when it is
    /// neither, or when any entry of a list is not a receipt.
    /// </summary>
    public static bool TryDecodeList(ReadOnlySpan<byte> utf8Json, out IReadOnlyList<EvidenceReceipt> receipts)
    {
        receipts = [];
        var start = utf8Json.TrimStart(" \t\r\n"u8);
        if (start.IsEmpty || start[0] != (byte)'[')
        {
            if (TryDecode(utf8Json, out var single))
            {
                receipts = [single!];
                return true;
            }

            return false;
        }

        if (utf8Json.Length > MaxEncodedListBytes)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            var count = root.GetArrayLength();
            if (count == 0 || count > MaxListLength)
            {
                return false;
            }

            var list = new List<EvidenceReceipt>(count);
            foreach (var element in root.EnumerateArray())
            {
                if (!TryDecode(element, out var receipt) || (list.Count > 0 && receipt!.DeviceId != list[0].DeviceId))
                {
                    return false;
                }

                list.Add(receipt!);
            }

            receipts = list;
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private void Write(Utf8JsonWriter json)
    {
        json.WriteStartObject();
        json.WriteString("device", DeviceId);
        if (Sequence is { } seq)
        {
            json.WriteNumber("seq", seq);
        }
        else
        {
            json.WriteNull("seq");
        }

        json.WriteString("hash", Hash);
        json.WriteString("status", Status switch
        {
            ReceiptStatus.Stored => "stored",
            ReceiptStatus.Duplicate => "duplicate",
            _ => "rejected",
        });
        if (Reason is null)
        {
            json.WriteNull("reason");
        }
        else
        {
            json.WriteString("reason", Reason);
        }

        json.WriteEndObject();
    }

    /// <summary>Decodes an untrusted receipt; false (never an exception) when it is not one.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8Json, out EvidenceReceipt? receipt)
    {
        receipt = null;
        if (utf8Json.Length > MaxEncodedBytes)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            using var document = JsonDocument.ParseValue(ref reader);
            return TryDecode(document.RootElement, out receipt);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private static bool TryDecode(JsonElement root, out EvidenceReceipt? receipt)
    {
        receipt = null;
        try
        {
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("device", out var device) || device.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("hash", out var hash) || hash.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("status", out var status) || status.ValueKind != JsonValueKind.String)
            {
                return false;
            }

            long? sequence = null;
            if (root.TryGetProperty("seq", out var seq) && seq.ValueKind != JsonValueKind.Null)
            {
                if (!seq.TryGetInt64(out var value) || value < 0)
                {
                    return false;
                }

                sequence = value;
            }

            ReceiptStatus? parsed = status.GetString() switch
            {
                "stored" => ReceiptStatus.Stored,
                "duplicate" => ReceiptStatus.Duplicate,
                "rejected" => ReceiptStatus.Rejected,
                _ => null,
            };
            var hashText = hash.GetString()!;
            if (parsed is null || !Identifier.IsValid(device.GetString()) || hashText.Length != 2 * EvidenceFormat.HashLength
                || !hashText.All(char.IsAsciiHexDigit))
            {
                return false;
            }

            string? reason = null;
            if (root.TryGetProperty("reason", out var reasonElement) && reasonElement.ValueKind == JsonValueKind.String)
            {
                reason = reasonElement.GetString();
            }

            receipt = new EvidenceReceipt(device.GetString()!, sequence, hashText.ToLowerInvariant(), parsed.Value, reason);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>True when this receipt is about the record with these COSE bytes.</summary>
    public bool Matches(ReadOnlySpan<byte> cose) =>
        string.Equals(Hash, Convert.ToHexStringLower(EvidenceRecord.Hash(cose)), StringComparison.Ordinal);
}
