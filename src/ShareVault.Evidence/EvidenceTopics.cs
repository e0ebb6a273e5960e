namespace ShareVault.Evidence;

/// <summary>
/// MQTT topic layout (MQTT 5 §4.7), one subtree per device:
/// <list type="bullet">
/// <item><c>sharevault/v1/devices/{id}/evidence</c> — device → service, COSE_Sign1 records, QoS 1, not retained.</item>
/// <item><c>sharevault/v1/devices/{id}/status</c> — device's retained <see cref="DeviceStatus"/>, also its last will.</item>
/// <item><c>sharevault/v1/devices/{id}/receipts</c> — service → device, <see cref="EvidenceReceipt"/> JSON, QoS 1.</item>
/// </list>
/// </summary>
public static class EvidenceTopics
{
    public const string Root = "sharevault/v1/devices";

    /// <summary>Every device's evidence, for the claims service.</summary>
    public const string AllEvidence = Root + "/+/evidence";

    /// <summary>Every device's status.</summary>
    public const string AllStatus = Root + "/+/status";

    public static string Evidence(string deviceId) => $"{Root}/{Checked(deviceId)}/evidence";

    public static string Status(string deviceId) => $"{Root}/{Checked(deviceId)}/status";

    public static string Receipts(string deviceId) => $"{Root}/{Checked(deviceId)}/receipts";

    /// <summary>A shared subscription (MQTT 5 §4.8.2) so several claim workers split the evidence stream.</summary>
    public static string SharedEvidence(string group)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        if (group.AsSpan().IndexOfAny("/+#") >= 0)
        {
            throw new ArgumentException("A share name cannot contain '/', '+' or '#'", nameof(group));
        }

        return $"$share/{group}/{AllEvidence}";
    }

    /// <summary>Extracts the device id and the last level (evidence, status, receipts) from a topic; false for other topics.</summary>
    public static bool TryParse(string topic, out string deviceId, out string kind)
    {
        deviceId = kind = string.Empty;
        if (topic is null || !topic.StartsWith(Root + "/", StringComparison.Ordinal))
        {
            return false;
        }

        var rest = topic.AsSpan(Root.Length + 1);
        var slash = rest.IndexOf('/');
        if (slash <= 0)
        {
            return false;
        }

        var id = rest[..slash].ToString();
        var last = rest[(slash + 1)..].ToString();
        if (!Identifier.IsValid(id) || last is not ("evidence" or "status" or "receipts"))
        {
            return false;
        }

        deviceId = id;
        kind = last;
        return true;
    }

    private static string Checked(string deviceId) =>
        Identifier.IsValid(deviceId)
            ? deviceId
            : throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
}
