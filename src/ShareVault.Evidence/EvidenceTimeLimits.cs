namespace ShareVault.Evidence;

/// <summary>
/// The bounds on a record's time (device clock) that the claims service applies when it stores a
/// record and <c>ledger verify</c> applies when it re-checks one (docs/evidence-format.md, "Time").
/// A device chooses its times; these bounds are what it cannot stretch: a record lies within
/// [arrival − <see cref="MaxAge"/>, arrival + <see cref="MaxLead"/>], and no earlier than the
/// device's previous record less <see cref="MaxStepBack"/>. With readings tied to their record
/// (<see cref="EvidenceLimits.MaxReadingAge"/>) and durations measured between records, a device
/// that has reported recently cannot make up a trigger's duration in a burst: the most a burst can
/// claim is the time since its previous record plus <see cref="MaxLead"/>.
/// </summary>
public sealed record EvidenceTimeLimits
{
    /// <summary>7 days before arrival, 5 minutes after it, 2 seconds before the previous record.</summary>
    public static EvidenceTimeLimits Default { get; } = new();

    /// <summary>
    /// How long before its arrival a record may have been made. Records legitimately arrive late: the
    /// agent's outbox keeps them through a broker or network outage and sends them when it is back,
    /// so the bound is the longest outage a pool should still pay from (a week: a holiday home whose
    /// router failed on a Friday). Longer lets a silent device backfill older history.
    /// </summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How far after its arrival a record may be timed: clock skew of a device that has synchronised
    /// once (an NTP-disciplined clock is within milliseconds; a Pi without an RTC boots in the past,
    /// not the future). Every later record must then be at least this late, so time borrowed from the
    /// future is paid back.
    /// </summary>
    public TimeSpan MaxLead { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How far before the device's previous record (by sequence) a record may be timed: an NTP step
    /// back between two polls (the same allowance as <see cref="EvidenceLimits.MaxReadingLead"/>).
    /// Further back, the record is refused: a device cannot backdate a record behind its own history.
    /// </summary>
    public TimeSpan MaxStepBack { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Throws when a bound is negative (misuse, not evidence).</summary>
    public EvidenceTimeLimits Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxAge, TimeSpan.Zero, nameof(MaxAge));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxLead, TimeSpan.Zero, nameof(MaxLead));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxStepBack, TimeSpan.Zero, nameof(MaxStepBack));
        return this;
    }

    /// <summary>True when <paramref name="recordTime"/> lies in the window around <paramref name="arrival"/>.</summary>
    public bool FitsArrival(DateTimeOffset recordTime, DateTimeOffset arrival) =>
        recordTime >= arrival - MaxAge && recordTime <= arrival + MaxLead;

    /// <summary>True when a record timed <paramref name="recordTime"/> may follow one timed <paramref name="previousTime"/>.</summary>
    public bool Follows(DateTimeOffset recordTime, DateTimeOffset previousTime) => recordTime >= previousTime - MaxStepBack;

    /// <summary>Why <paramref name="recordTime"/> does not fit its arrival (no payload), for a rejection's detail.</summary>
    public string DescribeArrival(DateTimeOffset recordTime, DateTimeOffset arrival) =>
        $"record time {recordTime.UtcDateTime:O} is outside [{(arrival - MaxAge).UtcDateTime:O}, {(arrival + MaxLead).UtcDateTime:O}] around its arrival";
}
