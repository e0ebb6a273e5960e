using System.Globalization;

namespace DeviceAgent.Sensors.Gps;

/// <summary>A parsed NMEA 0183 sentence the GPS driver uses.</summary>
public abstract record NmeaSentence(string Talker, TimeOnly? UtcTime);

/// <summary>
/// RMC, "recommended minimum specific GNSS data" (NMEA 0183 v4.10):
/// <c>$--RMC,hhmmss.ss,A,llll.ll,a,yyyyy.yy,a,x.x,x.x,ddmmyy,x.x,a[,a[,a]]*hh</c>.
/// Status A = data valid, V = navigation receiver warning.
/// </summary>
public sealed record RmcSentence(string Talker, TimeOnly? UtcTime, bool Valid, double? Latitude, double? Longitude,
    double? SpeedKnots, DateOnly? UtcDate) : NmeaSentence(Talker, UtcTime);

/// <summary>
/// GGA, "global positioning system fix data":
/// <c>$--GGA,hhmmss.ss,llll.ll,a,yyyyy.yy,a,x,xx,x.x,x.x,M,x.x,M,x.x,xxxx*hh</c>.
/// Fix quality: 0 invalid, 1 GPS, 2 DGPS, 3 PPS, 4 RTK fixed, 5 RTK float, 6 estimated, 7 manual, 8 simulation.
/// </summary>
public sealed record GgaSentence(string Talker, TimeOnly? UtcTime, double? Latitude, double? Longitude, int FixQuality,
    int Satellites, double? Hdop, double? AltitudeMeters) : NmeaSentence(Talker, UtcTime);

/// <summary>Outcome of parsing one line: a sentence, or the reason it was rejected.</summary>
public readonly record struct NmeaParseResult(NmeaSentence? Sentence, string? Error)
{
    public bool Success => Sentence is not null;

    internal static NmeaParseResult Fail(string error) => new(null, error);
}

/// <summary>NMEA 0183 line parser for RMC and GGA with checksum verification.</summary>
public static class NmeaParser
{
    /// <summary>NMEA 0183 limits a sentence to 82 characters including '$' and CR LF.</summary>
    public const int MaxSentenceLength = 82;

    /// <summary>
    /// Checksum: 8-bit XOR of every character between '$' (or '!') and '*', written as two hex digits
    /// (NMEA 0183 §5.2.1 "checksum field"; mandatory for RMC and GGA).
    /// </summary>
    public static byte Checksum(ReadOnlySpan<char> body)
    {
        byte sum = 0;
        foreach (var c in body)
        {
            sum ^= (byte)c;
        }

        return sum;
    }

    /// <summary>Builds a complete sentence ($, body, *, checksum) without CR LF.</summary>
    public static string Frame(string body) =>
        string.Create(CultureInfo.InvariantCulture, $"${body}*{Checksum(body):X2}");

    /// <summary>Parses one line (with or without the trailing CR LF). Never throws on hostile input.</summary>
    public static NmeaParseResult Parse(ReadOnlySpan<char> line)
    {
        line = line.TrimEnd("\r\n");
        if (line.Length > MaxSentenceLength)
        {
            return NmeaParseResult.Fail($"sentence longer than {MaxSentenceLength} characters");
        }

        if (line.Length < 7 || line[0] != '$')
        {
            return NmeaParseResult.Fail("not an NMEA sentence (no leading '$')");
        }

        var star = line.LastIndexOf('*');
        if (star < 0 || star != line.Length - 3)
        {
            return NmeaParseResult.Fail("missing checksum ('*hh' at the end)");
        }

        var body = line[1..star];
        if (!byte.TryParse(line[(star + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var expected))
        {
            return NmeaParseResult.Fail("checksum is not two hex digits");
        }

        var actual = Checksum(body);
        if (actual != expected)
        {
            return NmeaParseResult.Fail(string.Create(CultureInfo.InvariantCulture, $"checksum mismatch: sentence says {expected:X2}, content gives {actual:X2}"));
        }

        var fields = body.ToString().Split(',');
        if (fields[0].Length != 5)
        {
            return NmeaParseResult.Fail("address field is not a 2-letter talker and a 3-letter sentence type");
        }

        var talker = fields[0][..2];
        return fields[0][2..] switch
        {
            "RMC" => ParseRmc(talker, fields),
            "GGA" => ParseGga(talker, fields),
            var other => NmeaParseResult.Fail($"unsupported sentence type {other}"),
        };
    }

    private static NmeaParseResult ParseRmc(string talker, string[] f)
    {
        if (f.Length < 12)
        {
            return NmeaParseResult.Fail("RMC has fewer than 12 fields");
        }

        if (!TryTime(f[1], out var time))
        {
            return NmeaParseResult.Fail("RMC time is not hhmmss.ss");
        }

        if (!TryPosition(f[3], f[4], f[5], f[6], out var lat, out var lon, out var error))
        {
            return NmeaParseResult.Fail(error);
        }

        var valid = f[2] switch
        {
            "A" => true,
            "V" => false,
            _ => (bool?)null,
        };
        if (valid is null)
        {
            return NmeaParseResult.Fail("RMC status is neither A nor V");
        }

        double? speed = double.TryParse(f[7], NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? s : null;
        DateOnly? date = null;
        if (f[9].Length > 0)
        {
            if (!DateOnly.TryParseExact(f[9], "ddMMyy", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
            {
                return NmeaParseResult.Fail("RMC date is not ddmmyy");
            }

            date = d;
        }

        return new(new RmcSentence(talker, time, valid.Value, lat, lon, speed, date), null);
    }

    private static NmeaParseResult ParseGga(string talker, string[] f)
    {
        if (f.Length < 15)
        {
            return NmeaParseResult.Fail("GGA has fewer than 15 fields");
        }

        if (!TryTime(f[1], out var time))
        {
            return NmeaParseResult.Fail("GGA time is not hhmmss.ss");
        }

        if (!TryPosition(f[2], f[3], f[4], f[5], out var lat, out var lon, out var error))
        {
            return NmeaParseResult.Fail(error);
        }

        if (!int.TryParse(f[6], NumberStyles.None, CultureInfo.InvariantCulture, out var quality) || quality > 8)
        {
            return NmeaParseResult.Fail("GGA fix quality is not 0..8");
        }

        _ = int.TryParse(f[7], NumberStyles.None, CultureInfo.InvariantCulture, out var satellites);
        double? hdop = double.TryParse(f[8], NumberStyles.Float, CultureInfo.InvariantCulture, out var h) ? h : null;
        double? altitude = double.TryParse(f[9], NumberStyles.Float, CultureInfo.InvariantCulture, out var a) ? a : null;
        return new(new GgaSentence(talker, time, lat, lon, quality, satellites, hdop, altitude), null);
    }

    private static bool TryTime(string field, out TimeOnly? time)
    {
        time = null;
        if (field.Length == 0)
        {
            return true;
        }

        if (field.Length < 6
            || !int.TryParse(field.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var hh)
            || !int.TryParse(field.AsSpan(2, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var mm)
            || !double.TryParse(field.AsSpan(4), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var ss)
            || hh > 23 || mm > 59 || ss >= 61)
        {
            return false;
        }

        time = new TimeOnly(hh, mm, Math.Min((int)ss, 59), (int)((ss - Math.Floor(ss)) * 1000));
        return true;
    }

    // Latitude is ddmm.mmmm with N/S, longitude dddmm.mmmm with E/W; both empty when there is no fix.
    private static bool TryPosition(string latField, string ns, string lonField, string ew,
        out double? latitude, out double? longitude, [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out string? error)
    {
        latitude = longitude = null;
        error = null;
        if (latField.Length == 0 && lonField.Length == 0)
        {
            return true;
        }

        if (!TryDegrees(latField, 2, out var lat) || lat > 90 || (ns != "N" && ns != "S"))
        {
            error = "latitude is not ddmm.mmmm,N|S within 90°";
            return false;
        }

        if (!TryDegrees(lonField, 3, out var lon) || lon > 180 || (ew != "E" && ew != "W"))
        {
            error = "longitude is not dddmm.mmmm,E|W within 180°";
            return false;
        }

        latitude = ns == "S" ? -lat : lat;
        longitude = ew == "W" ? -lon : lon;
        return true;
    }

    private static bool TryDegrees(string field, int degreeDigits, out double degrees)
    {
        degrees = 0;
        var dot = field.IndexOf('.', StringComparison.Ordinal);
        if ((dot < 0 ? field.Length : dot) != degreeDigits + 2
            || !int.TryParse(field.AsSpan(0, degreeDigits), NumberStyles.None, CultureInfo.InvariantCulture, out var whole)
            || !double.TryParse(field.AsSpan(degreeDigits), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var minutes)
            || minutes >= 60)
        {
            return false;
        }

        degrees = whole + (minutes / 60);
        return true;
    }
}
