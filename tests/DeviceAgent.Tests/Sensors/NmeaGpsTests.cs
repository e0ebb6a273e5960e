using System.Text;
using DeviceAgent.Sensors;
using DeviceAgent.Sensors.Gps;
using Simulators;
using Simulators.Devices;

namespace DeviceAgent.Tests.Sensors;

public sealed class NmeaGpsTests
{
    // The classic example sentences (NMEA 0183 reference material, gpsinformation.org).
    private const string ExampleGga = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47";
    private const string ExampleRmc = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A";

    private readonly ScenarioClock _clock = new(new DateTimeOffset(2026, 7, 14, 16, 20, 5, TimeSpan.Zero));

    [Fact]
    public void Checksum_of_the_example_sentences_matches()
    {
        Assert.Equal(0x47, NmeaParser.Checksum(ExampleGga.AsSpan(1, ExampleGga.Length - 4)));
        Assert.Equal(0x6A, NmeaParser.Checksum(ExampleRmc.AsSpan(1, ExampleRmc.Length - 4)));
    }

    [Fact]
    public void Gga_is_parsed_into_position_fix_quality_and_altitude()
    {
        var result = NmeaParser.Parse(ExampleGga + "\r\n");
        var gga = Assert.IsType<GgaSentence>(result.Sentence);
        Assert.Equal("GP", gga.Talker);
        Assert.Equal(new TimeOnly(12, 35, 19), gga.UtcTime);
        Assert.Equal(48 + (7.038 / 60), gga.Latitude!.Value, 1e-9);
        Assert.Equal(11 + (31.0 / 60), gga.Longitude!.Value, 1e-9);
        Assert.Equal((1, 8, 0.9, 545.4), (gga.FixQuality, gga.Satellites, gga.Hdop, gga.AltitudeMeters));
    }

    [Fact]
    public void Rmc_is_parsed_with_status_speed_and_date()
    {
        var rmc = Assert.IsType<RmcSentence>(NmeaParser.Parse(ExampleRmc).Sentence);
        Assert.True(rmc.Valid);
        Assert.Equal(22.4, rmc.SpeedKnots);
        Assert.Equal(new DateOnly(1994, 3, 23), rmc.UtcDate);
        Assert.Equal(48.1173, rmc.Latitude!.Value, 1e-4);
    }

    [Fact]
    public void Southern_and_western_hemispheres_are_negative()
    {
        var line = NmeaParser.Frame("GNRMC,081836.00,A,3751.65000,S,14507.36000,W,0.0,0.0,130998,,,A");
        var rmc = Assert.IsType<RmcSentence>(NmeaParser.Parse(line).Sentence);
        Assert.Equal(-(37 + (51.65 / 60)), rmc.Latitude!.Value, 1e-9);
        Assert.Equal(-(145 + (7.36 / 60)), rmc.Longitude!.Value, 1e-9);
        Assert.Equal("GN", rmc.Talker);
    }

    [Theory]
    [InlineData("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48", "checksum mismatch")]
    [InlineData("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "missing checksum")]
    [InlineData("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*ZZ", "not two hex digits")]
    [InlineData("GPGGA,123519,4807.038,N*47", "no leading '$'")]
    [InlineData("", "no leading '$'")]
    public void Bad_sentences_are_rejected_with_a_reason(string line, string reason)
    {
        var result = NmeaParser.Parse(line);
        Assert.False(result.Success);
        Assert.Contains(reason, result.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GPGGA,123519,9907.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "latitude")]
    [InlineData("GPGGA,123519,4807.038,N,19131.000,E,1,08,0.9,545.4,M,46.9,M,,", "longitude")]
    [InlineData("GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "latitude")]
    [InlineData("GPGGA,993519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", "time")]
    [InlineData("GPGGA,123519,4807.038,N,01131.000,E,9,08,0.9,545.4,M,46.9,M,,", "fix quality")]
    [InlineData("GPRMC,123519,Q,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", "status")]
    [InlineData("GPGGA,123519,4807.038,N", "fewer than 15 fields")]
    public void Well_framed_but_impossible_content_is_rejected(string body, string reason)
    {
        var result = NmeaParser.Parse(NmeaParser.Frame(body));
        Assert.False(result.Success);
        Assert.Contains(reason, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_garbage_never_throws()
    {
        var random = new Random(1234);
        for (var i = 0; i < 5000; i++)
        {
            var chars = new char[random.Next(0, 120)];
            for (var j = 0; j < chars.Length; j++)
            {
                chars[j] = "$*,.0123456789ABCDEFGPRMCNSEW\r\n"[random.Next(31)];
            }

            var text = new string(chars);
            var result = NmeaParser.Parse(random.Next(2) == 0 ? text : NmeaParser.Frame(text));
            Assert.True(result.Success || result.Error is not null);
        }
    }

    [Fact]
    public void Driver_reads_position_and_fix_from_the_simulated_receiver()
    {
        using var stream = new SimulatedNmeaStream(_clock, 38.7742, -9.1342);
        using var gps = new NmeaGps(stream);

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Null(sample.Fault);
        var r = sample.Readings.ToDictionary(x => x.Name);
        Assert.Equal(1, r["gps_fix"].Value);
        Assert.Equal(38.7742, r["latitude"].Value, 1e-5);
        Assert.Equal(-9.1342, r["longitude"].Value, 1e-5);
        Assert.Equal(("lat", "lon"), (r["latitude"].Unit, r["longitude"].Unit));
    }

    [Fact]
    public void Sentences_with_bad_checksums_are_skipped_and_counted()
    {
        using var stream = new SimulatedNmeaStream(_clock, 1.5, 2.5);
        using var gps = new NmeaGps(stream);
        stream.CorruptNextSentences(3);

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Null(sample.Fault);
        Assert.Equal(1.5, sample.Readings.Single(x => x.Name == "latitude").Value, 1e-5);
        Assert.Equal(3, gps.RejectedLines);
        Assert.Contains("checksum mismatch", gps.LastRejection, StringComparison.Ordinal);
    }

    [Fact]
    public void Only_corrupt_sentences_give_a_fault_with_the_reason()
    {
        using var stream = new SimulatedNmeaStream(_clock, 1.5, 2.5);
        using var gps = new NmeaGps(stream, maxLinesPerRead: 12);
        stream.CorruptNextSentences(1000);

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Empty(sample.Readings);
        Assert.Contains("no valid RMC/GGA", sample.Fault, StringComparison.Ordinal);
        Assert.Contains("checksum mismatch", sample.Fault, StringComparison.Ordinal);
    }

    [Fact]
    public void No_fix_reports_gps_fix_0_and_no_position()
    {
        using var stream = new SimulatedNmeaStream(_clock, 1.5, 2.5);
        using var gps = new NmeaGps(stream);
        stream.SetFixQuality(0);

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Null(sample.Fault);
        Assert.Equal(0, Assert.Single(sample.Readings, r => r.Name == "gps_fix").Value);
        Assert.DoesNotContain(sample.Readings, r => r.Name is "latitude" or "longitude");
    }

    [Fact]
    public void Serial_error_is_a_fault()
    {
        using var stream = new SimulatedNmeaStream(_clock, 1.5, 2.5);
        using var gps = new NmeaGps(stream);
        stream.FailNextReads(1);
        Assert.Contains("GPS serial error", gps.Read(_clock.GetUtcNow()).Fault, StringComparison.Ordinal);
        Assert.Null(gps.Read(_clock.GetUtcNow()).Fault);
    }

    [Fact]
    public void Ended_stream_is_a_fault()
    {
        using var gps = new NmeaGps(new MemoryStream(Encoding.ASCII.GetBytes("$GPGSV,1,1,00*79\r\n")));
        Assert.Equal("GPS serial stream ended", gps.Read(_clock.GetUtcNow()).Fault);
    }

    [Fact]
    public void Overlong_line_of_garbage_is_rejected_not_buffered()
    {
        var garbage = new string('A', 100_000) + "\n" + ExampleRmc + "\r\n" + ExampleGga + "\r\n";
        using var gps = new NmeaGps(new MemoryStream(Encoding.ASCII.GetBytes(garbage)));

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Null(sample.Fault);
        Assert.Equal(48.1173, sample.Readings.Single(r => r.Name == "latitude").Value, 1e-4);
        Assert.Equal(1, gps.RejectedLines);
    }

    [Fact]
    public void Queued_sentences_are_discarded_before_a_read_when_asked()
    {
        var stale = NmeaParser.Frame("GPRMC,100000.00,A,1000.00000,N,02000.00000,E,0.0,0.0,140726,,,A") + "\r\n"
            + NmeaParser.Frame("GPGGA,100000.00,1000.00000,N,02000.00000,E,1,08,1.0,2.0,M,47.0,M,,") + "\r\n";
        var fresh = NmeaParser.Frame("GPRMC,100100.00,A,1100.00000,N,02100.00000,E,0.0,0.0,140726,,,A") + "\r\n"
            + NmeaParser.Frame("GPGGA,100100.00,1100.00000,N,02100.00000,E,1,08,1.0,2.0,M,47.0,M,,") + "\r\n";
        var stream = new MemoryStream(Encoding.ASCII.GetBytes(stale + fresh));
        var discards = 0;
        using var gps = new NmeaGps(stream, discardBufferedInput: () =>
        {
            discards++;
            stream.Position = stale.Length; // what SerialPort.DiscardInBuffer does to the queued epoch
        });

        var sample = gps.Read(_clock.GetUtcNow());

        Assert.Equal(1, discards);
        Assert.Equal(11, sample.Readings.Single(r => r.Name == "latitude").Value, 1e-9);
    }

    [Fact]
    public void Sensor_seam_reports_the_gps_id()
    {
        using var stream = new SimulatedNmeaStream(_clock);
        ISensor gps = new NmeaGps(stream, id: "gps-2");
        Assert.Equal("gps-2", gps.Read(_clock.GetUtcNow()).SensorId);
        gps.Dispose();
    }
}
