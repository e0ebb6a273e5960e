using ShareVault.Claims.Rules;
using ShareVault.Evidence;

namespace ShareVault.Claims.Ingest;

/// <summary>
/// A record that passed verification (signature, device/topic, size, time) and is ready to store.
/// <paramref name="ChainStart"/>: the record carries no previous hash (the device's first record).
/// <paramref name="PreviousHash"/>: the hash the record says its predecessor has (empty at a chain
/// start; null when unknown, which skips the chain check).
/// </summary>
public sealed record VerifiedRecord(string DeviceId, long Sequence, DateTimeOffset Time, byte[] Hash, byte[] Cose, IReadOnlyList<Reading> Readings, bool ChainStart = false, byte[]? PreviousHash = null)
{
    public EvidenceFacts Facts => new(DeviceId, Sequence, Time, Hash, Readings);
}

/// <summary>What happened to one record of a batch.</summary>
public enum StoreOutcome
{
    /// <summary>Written durably in this batch.</summary>
    Stored,

    /// <summary>The same record was already stored (a replay or a redelivery): receipt again, change nothing.</summary>
    Duplicate,

    /// <summary>Another record already holds this sequence number: rejected as <c>sequence_reused</c>.</summary>
    Conflict,

    /// <summary>Not stored: the record's time is too far from its arrival (<see cref="RejectionRow.TimeOutOfWindow"/>).</summary>
    TimeOutOfWindow,

    /// <summary>Not stored: timed before a neighbouring record of its device (<see cref="RejectionRow.RecordTimeBeforePrevious"/>).</summary>
    TimeBeforePrevious,
}

/// <summary>A refused record: when, which device (as claimed, when readable), topic, sequence, reason name, detail and size.</summary>
public sealed record RejectionRow(string ReceivedAt, string? DeviceId, string Topic, long? Sequence, string Reason, string Detail, int Size)
{
    public const string SequenceReused = "SequenceReused";

    /// <summary>The record's time lies outside [arrival − max age, arrival + max lead] (<see cref="ShareVault.Evidence.EvidenceTimeLimits"/>).</summary>
    public const string TimeOutOfWindow = "TimeOutOfWindow";

    /// <summary>The record is timed further before its device's previous record (or after its next one) than the allowed step back.</summary>
    public const string RecordTimeBeforePrevious = "RecordTimeBeforePrevious";

    /// <summary>The rejection reason of a store outcome that refused the record, or null when it was stored (or is a duplicate).</summary>
    public static string? ReasonOf(StoreOutcome outcome) => outcome switch
    {
        StoreOutcome.Conflict => SequenceReused,
        StoreOutcome.TimeOutOfWindow => TimeOutOfWindow,
        StoreOutcome.TimeBeforePrevious => RecordTimeBeforePrevious,
        _ => null,
    };
}

/// <summary>Record <paramref name="Sequence"/> of a device named <paramref name="Found"/> as its predecessor's hash, not <paramref name="Expected"/>.</summary>
public sealed record ChainBreak(string DeviceId, long Sequence, string Expected, string Found, string DetectedAt);

public sealed record StoredEvidence(string DeviceId, long Sequence, string Time, string ReceivedAt, byte[] Hash, byte[] Cose, string Readings);
