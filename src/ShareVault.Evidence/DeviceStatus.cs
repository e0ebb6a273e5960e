using System.Text.Json;

namespace ShareVault.Evidence;

/// <summary>
/// The device's retained status (<see cref="EvidenceTopics.Status"/>), UTF-8 JSON:
/// <c>{"state":"online","seq":41,"outbox":3,"outboxFull":0}</c> while connected, and the last will
/// <c>{"state":"offline"}</c> the broker publishes when the device vanishes (MQTT 5 §3.1.2.5).
/// </summary>
public sealed record DeviceStatus(bool Online, long? LastSequence = null, int? OutboxCount = null, long? OutboxFullEvents = null)
{
    public byte[] Encode()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("state", Online ? "online" : "offline");
            if (LastSequence is { } seq)
            {
                json.WriteNumber("seq", seq);
            }

            if (OutboxCount is { } count)
            {
                json.WriteNumber("outbox", count);
            }

            if (OutboxFullEvents is { } full)
            {
                json.WriteNumber("outboxFull", full);
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Decodes an untrusted status message; false when it is not one.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8Json, out DeviceStatus? status)
    {
        status = null;
        if (utf8Json.Length > 4096)
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("state", out var state)
                || state.GetString() is not ("online" or "offline") || state.GetString() is not { } text)
            {
                return false;
            }

            status = new DeviceStatus(
                text == "online",
                root.TryGetProperty("seq", out var seq) && seq.TryGetInt64(out var s) ? s : null,
                root.TryGetProperty("outbox", out var count) && count.TryGetInt32(out var c) ? c : null,
                root.TryGetProperty("outboxFull", out var full) && full.TryGetInt64(out var f) ? f : null);
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }
}
