namespace ShareVault.Evidence;

/// <summary>
/// Outcome of verifying one record. When valid, <see cref="Record"/> holds the decoded payload; when
/// not, <see cref="Reason"/> and <see cref="Detail"/> say why. <see cref="DeviceId"/> is the claimed
/// <c>kid</c> whenever it could be read (useful to count rejections per device — it is not
/// authenticated unless <see cref="IsValid"/>). <see cref="Hash"/> is always the SHA-256 of the input.
/// </summary>
public sealed class EvidenceVerification
{
    private EvidenceVerification(EvidenceRecord? record, EvidenceRejection reason, string detail, string? deviceId, byte[] hash)
    {
        Record = record;
        Reason = reason;
        Detail = detail;
        DeviceId = deviceId;
        Hash = hash;
    }

    public bool IsValid => Reason == EvidenceRejection.None;

    public EvidenceRecord? Record { get; }

    public EvidenceRejection Reason { get; }

    /// <summary>A human explanation (never the payload itself).</summary>
    public string Detail { get; }

    public string? DeviceId { get; }

    /// <summary>SHA-256 of the bytes given to the verifier (the record's chain/receipt hash when valid).</summary>
    public byte[] Hash { get; }

    internal static EvidenceVerification Valid(EvidenceRecord record, byte[] hash) =>
        new(record, EvidenceRejection.None, "valid", record.DeviceId, hash);

    internal static EvidenceVerification Rejected(EvidenceRejection reason, string detail, string? deviceId, byte[] hash) =>
        new(null, reason, detail, deviceId, hash);

    public override string ToString() => IsValid ? $"valid: {Record}" : $"rejected ({Reason}): {Detail}";
}
