namespace ShareVault.Evidence;

/// <summary>A sensor that could not produce readings in this record, and why (bus error, unknown chip, implausible value).</summary>
public sealed record SensorFault(string SensorId, string Message);
