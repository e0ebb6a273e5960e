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
    public EvidenceFacts Facts => new(DeviceId, Sequence, Hash, Readings);
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
}

/// <summary>A refused record: when, which device (as claimed, when readable), topic, sequence, reason name, detail and size.</summary>
public sealed record RejectionRow(string ReceivedAt, string? DeviceId, string Topic, long? Sequence, string Reason, string Detail, int Size)
{
    public const string SequenceReused = "SequenceReused";
}

/// <summary>Record <paramref name="Sequence"/> of a device named <paramref name="Found"/> as its predecessor's hash, not <paramref name="Expected"/>.</summary>
public sealed record ChainBreak(string DeviceId, long Sequence, string Expected, string Found, string DetectedAt);

public sealed record StoredEvidence(string DeviceId, long Sequence, string Time, string ReceivedAt, byte[] Hash, byte[] Cose, string Readings);
