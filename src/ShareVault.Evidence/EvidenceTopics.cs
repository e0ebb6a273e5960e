namespace ShareVault.Evidence;

/// <summary>
/// MQTT topic layout (MQTT 5 §4.7), one subtree per device:
/// <list type="bullet">
/// <item><c>sharevault/v1/devices/{id}/evidence</c> — device → service, COSE_Sign1 records, QoS 1, not retained.</item>
/// <item><c>sharevault/v1/devices/{id}/status</c> — device's retained <see cref="DeviceStatus"/>, also its last will.</item>
/// <item><c>sharevault/v1/devices/{id}/receipts</c> — service → device, <see cref="EvidenceReceipt"/> JSON (one, or a list for a device that asks), QoS 1.</item>
/// </list>
/// </summary>
public static class EvidenceTopics
{
    private const string EvidenceLevel = "evidence";
    private const string StatusLevel = "status";
    private const string ReceiptsLevel = "receipts";

    public const string Root = "sharevault/v1/devices";

    /// <summary>Every device's evidence, for the claims service.</summary>
    public const string AllEvidence = Root + "/+/" + EvidenceLevel;

    /// <summary>Every device's status.</summary>
    public const string AllStatus = Root + "/+/" + StatusLevel;

    public static string Evidence(string deviceId) => For(deviceId, EvidenceTopicKind.Evidence);

    public static string Status(string deviceId) => For(deviceId, EvidenceTopicKind.Status);

    public static string Receipts(string deviceId) => For(deviceId, EvidenceTopicKind.Receipts);

    /// <summary>The topic of one kind in a device's subtree.</summary>
    public static string For(string deviceId, EvidenceTopicKind kind) => $"{Root}/{Checked(deviceId)}/{Level(kind)}";

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
    public static bool TryParse(string topic, out string deviceId, out EvidenceTopicKind kind)
    {
        deviceId = string.Empty;
        kind = default;
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
        EvidenceTopicKind? last = rest[(slash + 1)..] switch
        {
            EvidenceLevel => EvidenceTopicKind.Evidence,
            StatusLevel => EvidenceTopicKind.Status,
            ReceiptsLevel => EvidenceTopicKind.Receipts,
            _ => null,
        };
        if (!Identifier.IsValid(id) || last is null)
        {
            return false;
        }

        deviceId = id;
        kind = last.Value;
        return true;
    }

    private static string Level(EvidenceTopicKind kind) => kind switch
    {
        EvidenceTopicKind.Evidence => EvidenceLevel,
        EvidenceTopicKind.Status => StatusLevel,
        EvidenceTopicKind.Receipts => ReceiptsLevel,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown topic kind"),
    };

    private static string Checked(string deviceId) =>
        Identifier.IsValid(deviceId)
            ? deviceId
            : throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
}

/// <summary>The last level of a device topic: what travels on it.</summary>
public enum EvidenceTopicKind
{
    /// <summary><c>…/evidence</c>: COSE_Sign1 records, device → service.</summary>
    Evidence,

    /// <summary><c>…/status</c>: the device's retained status and last will.</summary>
    Status,

    /// <summary><c>…/receipts</c>: receipts, service → device.</summary>
    Receipts,
}
