namespace ShareVault.Evidence;

/// <summary>Bounds a verifier applies to untrusted evidence before and while decoding it.</summary>
public sealed record EvidenceLimits
{
    /// <summary>Defaults sized for a sensor kit: 64 KiB per record, 1024 readings, 64 faults, 256-character strings.</summary>
    public static EvidenceLimits Default { get; } = new();

    /// <summary>Largest accepted COSE_Sign1, in bytes.</summary>
    public int MaxRecordBytes { get; init; } = 64 * 1024;

    /// <summary>Most readings in one record.</summary>
    public int MaxReadings { get; init; } = 1024;

    /// <summary>Most sensor faults in one record.</summary>
    public int MaxFaults { get; init; } = 64;

    /// <summary>Longest text string (reading name, unit, sensor id, fault message), in UTF-8 bytes.</summary>
    public int MaxStringBytes { get; init; } = 256;

    /// <summary>
    /// How long before its record's time a reading may have been taken. An agent reads its sensors and
    /// makes the record in the same poll, so a minute is generous; a trigger's duration is then measured
    /// across records, never inside one.
    /// </summary>
    public TimeSpan MaxReadingAge { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How far after its record's time a reading may be timed (a device clock stepped back by NTP mid-poll).</summary>
    public TimeSpan MaxReadingLead { get; init; } = TimeSpan.FromSeconds(2);
}
