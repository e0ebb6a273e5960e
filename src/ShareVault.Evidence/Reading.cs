namespace ShareVault.Evidence;

/// <summary>
/// One measurement, shaped like a SenML record (RFC 8428 §4): name, unit (RFC 8428 §12.1 units),
/// value and time. Names used by ShareVault kits:
/// <c>temperature</c> (Cel), <c>humidity</c> (%RH), <c>pressure</c> (Pa), <c>water_leak</c> (1 wet / 0 dry, no unit),
/// <c>shock</c> (peak acceleration, m/s2), <c>free_fall</c> (1 when detected, no unit),
/// <c>latitude</c> (lat), <c>longitude</c> (lon), <c>gps_fix</c> (NMEA GGA fix quality, no unit).
/// </summary>
public sealed record Reading(string Name, string? Unit, double Value, DateTimeOffset Time);
