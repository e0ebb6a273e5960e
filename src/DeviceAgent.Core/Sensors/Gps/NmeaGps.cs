using System.Globalization;
using System.Text;
using ShareVault.Evidence;

namespace DeviceAgent.Sensors.Gps;

/// <summary>
/// A GNSS receiver speaking NMEA 0183 over a serial line (9600 8N1 by default on u-blox NEO-6/7/8 and
/// most hobby modules). The driver reads lines from the stream (on a Pi:
/// <c>new SerialPort("/dev/serial0", 9600) { ReadTimeout = 2000 }</c>, then <c>BaseStream</c>) until it
/// has an RMC and a GGA sentence from the same fix epoch, verifying every checksum.
/// Readings: <c>latitude</c> (lat), <c>longitude</c> (lon) in decimal degrees when there is a fix,
/// and <c>gps_fix</c> (the GGA fix quality, 0 = no fix).
/// </summary>
public sealed class NmeaGps : ISensor
{
    /// <summary>UART on the 40-pin header (GPIO 14 TXD / GPIO 15 RXD) once the serial console is disabled.</summary>
    public const string DefaultPortName = "/dev/serial0";

    public const int DefaultBaudRate = 9600;

    private readonly Stream _stream;
    private readonly Action? _discardBufferedInput;
    private readonly int _maxLinesPerRead;
    private readonly byte[] _buffer = new byte[512];
    private readonly StringBuilder _line = new(NmeaParser.MaxSentenceLength);
    private int _bufferPosition;
    private int _bufferLength;

    /// <param name="stream">Readable stream carrying NMEA sentences; owned and disposed by this driver.</param>
    /// <param name="id">Sensor id in the kit.</param>
    /// <param name="maxLinesPerRead">How many lines one read may consume before giving up (a receiver sends ~6-10 per second).</param>
    /// <param name="discardBufferedInput">
    /// Called at the start of each read to drop sentences queued since the previous one (on a Pi:
    /// <c>port.DiscardInBuffer</c>), so a read once a minute reports the current fix, not one from the
    /// kernel's UART buffer. Null for streams that produce data on demand.
    /// </param>
    public NmeaGps(Stream stream, string id = "gps", int maxLinesPerRead = 40, Action? discardBufferedInput = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLinesPerRead, 2);
        if (!stream.CanRead)
        {
            throw new ArgumentException("The NMEA stream must be readable.", nameof(stream));
        }

        _stream = stream;
        _maxLinesPerRead = maxLinesPerRead;
        _discardBufferedInput = discardBufferedInput;
        Id = id;
    }

    public string Id { get; }

    /// <summary>Lines rejected so far (bad checksum, malformed), for diagnostics.</summary>
    public long RejectedLines { get; private set; }

    /// <summary>The reason the most recent line was rejected, if any.</summary>
    public string? LastRejection { get; private set; }

    public SensorSample Read(DateTimeOffset now)
    {
        RmcSentence? rmc = null;
        GgaSentence? gga = null;
        var rejected = 0;
        try
        {
            if (_discardBufferedInput is not null)
            {
                _discardBufferedInput();
                _bufferPosition = _bufferLength = 0;
            }

            for (var i = 0; i < _maxLinesPerRead; i++)
            {
                var line = ReadLine();
                if (line is null)
                {
                    return SensorSample.Faulted(Id, "GPS serial stream ended");
                }

                if (line.Length == 0)
                {
                    continue;
                }

                var parsed = NmeaParser.Parse(line);
                if (!parsed.Success)
                {
                    // Other sentence types (GSV, GSA, VTG, ...) are normal traffic, not errors.
                    if (parsed.Error is { } error && !error.StartsWith("unsupported sentence type", StringComparison.Ordinal))
                    {
                        rejected++;
                        RejectedLines++;
                        LastRejection = error;
                    }

                    continue;
                }

                switch (parsed.Sentence)
                {
                    case RmcSentence r: rmc = r; break;
                    case GgaSentence g: gga = g; break;
                }

                // Both sentences of one epoch carry the same UTC time of fix.
                if (rmc is not null && gga is not null && rmc.UtcTime == gga.UtcTime)
                {
                    return ToSample(rmc, gga, now);
                }
            }
        }
        catch (IOException ex)
        {
            return SensorSample.Faulted(Id, $"GPS serial error: {ex.Message}");
        }
        catch (TimeoutException)
        {
            return SensorSample.Faulted(Id, "GPS serial read timed out: no NMEA data from the receiver");
        }

        if (rmc is not null || gga is not null)
        {
            return ToSample(rmc, gga, now);
        }

        return SensorSample.Faulted(Id, string.Create(CultureInfo.InvariantCulture,
            $"no valid RMC/GGA sentence in {_maxLinesPerRead} lines ({rejected} rejected; last: {LastRejection ?? "none"})"));
    }

    private SensorSample ToSample(RmcSentence? rmc, GgaSentence? gga, DateTimeOffset now)
    {
        var fix = gga?.FixQuality ?? (rmc is { Valid: true } ? 1 : 0);
        var latitude = gga?.Latitude ?? (rmc is { Valid: true } ? rmc.Latitude : null);
        var longitude = gga?.Longitude ?? (rmc is { Valid: true } ? rmc.Longitude : null);
        var readings = new List<Reading>(3) { new("gps_fix", null, fix, now) };
        if (fix > 0 && latitude is { } lat && longitude is { } lon)
        {
            readings.Add(new Reading("latitude", "lat", Math.Round(lat, 7), now));
            readings.Add(new Reading("longitude", "lon", Math.Round(lon, 7), now));
        }

        return new SensorSample(Id, readings);
    }

    // Reads one line of ASCII; returns null at end of stream. Overlong lines are cut short and
    // then rejected by the parser's length check, so garbage can never grow the buffer.
    private string? ReadLine()
    {
        _line.Clear();
        while (true)
        {
            if (_bufferPosition == _bufferLength)
            {
                _bufferLength = _stream.Read(_buffer, 0, _buffer.Length);
                _bufferPosition = 0;
                if (_bufferLength == 0)
                {
                    return _line.Length > 0 ? _line.ToString() : null;
                }
            }

            var b = _buffer[_bufferPosition++];
            if (b == (byte)'\n')
            {
                return _line.ToString();
            }

            if (_line.Length <= NmeaParser.MaxSentenceLength + 2)
            {
                _line.Append(b is >= 0x20 and < 0x7F or (byte)'\r' ? (char)b : '?');
            }
        }
    }

    public void Dispose() => _stream.Dispose();
}
