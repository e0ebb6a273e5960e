using System.Security.Cryptography;

namespace ShareVault.Evidence.Tests;

internal static class EvidenceSamples
{
    public static readonly DateTimeOffset Time = DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_123);

    public static EvidenceRecord Record(string deviceId = "pi-kitchen-1", long sequence = 7, byte[]? previous = null) =>
        new(
            deviceId,
            sequence,
            Time,
            previous ?? SHA256.HashData("previous record"u8),
            [
                new Reading("temperature", "Cel", 21.5, Time),
                new Reading("humidity", "%RH", 48.25, Time),
                new Reading("pressure", "Pa", 101325.3, Time.AddMilliseconds(-250)),
                new Reading("water_leak", null, 0, Time),
            ],
            [new SensorFault("gps", "no NMEA sentence for 10 s")]);

    public static ECDsa NewKey() => ECDsa.Create(ECCurve.NamedCurves.nistP256);
}
