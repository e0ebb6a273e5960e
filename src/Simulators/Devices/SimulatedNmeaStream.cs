using System.Globalization;
using System.Text;
using DeviceAgent.Sensors.Gps;

namespace Simulators.Devices;

/// <summary>
/// A GNSS receiver's serial output: each time the reader runs out of bytes, the stream emits the
/// sentences of one fix epoch at the clock's current time — GSA (ignored by the driver, as real
/// traffic would be), RMC and GGA — with correct NMEA 0183 checksums for the position set with
/// <see cref="SetPosition"/>. Faults can be injected: corrupted checksums and I/O errors.
/// </summary>
public sealed class SimulatedNmeaStream : Stream
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _clock;
    private byte[] _pending = [];
    private int _position;
    private double _latitude, _longitude;
    private int _fixQuality = 1;
    private int _corruptSentences;
    private int _failReads;

    public SimulatedNmeaStream(TimeProvider clock, double latitude = 0, double longitude = 0)
    {
        ArgumentNullException.ThrowIfNull(clock);
        _clock = clock;
        SetPosition(latitude, longitude);
    }

    /// <summary>Talker id: GP (GPS), GN (multi-constellation), GL, GA.</summary>
    public string Talker { get; set; } = "GP";

    public double AltitudeMeters { get; set; } = 2;

    public int Satellites { get; set; } = 9;

    /// <summary>Number of sentences emitted so far.</summary>
    public long SentencesWritten { get; private set; }

    public void SetPosition(double latitude, double longitude)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Math.Abs(latitude), 90, nameof(latitude));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Math.Abs(longitude), 180, nameof(longitude));
        lock (_gate)
        {
            (_latitude, _longitude) = (latitude, longitude);
        }
    }

    /// <summary>GGA fix quality to report (0 = no fix: RMC status V and empty position fields).</summary>
    public void SetFixQuality(int quality)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(quality);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(quality, 8);
        lock (_gate)
        {
            _fixQuality = quality;
        }
    }

    /// <summary>The next <paramref name="count"/> RMC/GGA sentences carry a wrong checksum (line noise).</summary>
    public void CorruptNextSentences(int count)
    {
        lock (_gate)
        {
            _corruptSentences = count;
        }
    }

    /// <summary>The next <paramref name="count"/> reads throw <see cref="IOException"/> (UART framing error, unplugged adapter).</summary>
    public void FailNextReads(int count)
    {
        lock (_gate)
        {
            _failReads = count;
        }
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        lock (_gate)
        {
            if (_failReads > 0)
            {
                _failReads--;
                throw new IOException("Simulated UART error (EIO) on /dev/serial0.");
            }

            if (_position == _pending.Length)
            {
                _pending = Encoding.ASCII.GetBytes(Epoch());
                _position = 0;
            }

            var n = Math.Min(buffer.Length, _pending.Length - _position);
            _pending.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
    }

    private string Epoch()
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        var time = now.ToString("HHmmss.ff", CultureInfo.InvariantCulture);
        var date = now.ToString("ddMMyy", CultureInfo.InvariantCulture);
        var fix = _fixQuality > 0;
        var (lat, ns) = fix ? Coordinate(_latitude, 2, 'N', 'S') : (string.Empty, string.Empty);
        var (lon, ew) = fix ? Coordinate(_longitude, 3, 'E', 'W') : (string.Empty, string.Empty);
        var inv = CultureInfo.InvariantCulture;
        var gsa = $"{Talker}GSA,A,{(fix ? 3 : 1)},04,05,09,12,24,25,29,31,,,,,1.8,1.0,1.5";
        var rmc = string.Create(inv, $"{Talker}RMC,{time},{(fix ? 'A' : 'V')},{lat},{ns},{lon},{ew},0.02,0.0,{date},,,{(fix ? 'A' : 'N')}");
        var gga = string.Create(inv, $"{Talker}GGA,{time},{lat},{ns},{lon},{ew},{_fixQuality},{(fix ? Satellites : 0):00},{(fix ? "1.0" : string.Empty)},{(fix ? AltitudeMeters.ToString("F1", inv) : string.Empty)},M,47.0,M,,");
        var text = new StringBuilder();
        text.Append(NmeaParser.Frame(gsa)).Append("\r\n");
        foreach (var body in new[] { rmc, gga })
        {
            var sentence = NmeaParser.Frame(body);
            if (_corruptSentences > 0)
            {
                _corruptSentences--;
                // Flip the checksum's low bit: the content no longer matches it.
                var sum = Convert.ToByte(sentence[^2..], 16) ^ 0x01;
                sentence = string.Create(inv, $"{sentence[..^2]}{sum:X2}");
            }

            text.Append(sentence).Append("\r\n");
            SentencesWritten++;
        }

        return text.ToString();
    }

    // ddmm.mmmmm / dddmm.mmmmm with hemisphere (NMEA 0183 latitude/longitude fields).
    private static (string Value, string Hemisphere) Coordinate(double degrees, int degreeDigits, char positive, char negative)
    {
        var abs = Math.Abs(degrees);
        var whole = (int)Math.Floor(abs);
        var minutes = Math.Round((abs - whole) * 60, 5);
        if (minutes >= 60)
        {
            whole++;
            minutes = 0;
        }

        var format = degreeDigits == 2 ? "00" : "000";
        var value = whole.ToString(format, CultureInfo.InvariantCulture) + minutes.ToString("00.00000", CultureInfo.InvariantCulture);
        return (value, (degrees < 0 ? negative : positive).ToString());
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
