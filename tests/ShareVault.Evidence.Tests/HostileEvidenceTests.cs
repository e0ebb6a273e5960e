using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Security.Cryptography.Cose;
using System.Text;

namespace ShareVault.Evidence.Tests;

public sealed class HostileEvidenceTests : IDisposable
{
    private readonly ECDsa _key = EvidenceSamples.NewKey();
    private readonly byte[] _cose;

    public HostileEvidenceTests() => _cose = EvidenceSigner.Sign(EvidenceSamples.Record(), _key);

    public void Dispose() => _key.Dispose();

    private EvidenceVerification Verify(byte[] cose, EvidenceLimits? limits = null) =>
        EvidenceVerifier.Verify(cose, id => id == "pi-kitchen-1" ? _key : null, limits);

    [Fact]
    public void A_record_whose_readings_span_a_trigger_duration_on_their_own_is_refused()
    {
        // The attack: one record, two water_leak readings ten minutes apart (in 1970), so that
        // "water_leak == 1 for 10m" would fire from a single record.
        var epoch = DateTimeOffset.UnixEpoch;
        var stretched = new EvidenceRecord("pi-kitchen-1", 7, epoch.AddMinutes(10), SHA256.HashData("previous record"u8),
            [new Reading("water_leak", null, 1, epoch), new Reading("water_leak", null, 1, epoch.AddMinutes(10))], []);

        var result = Verify(EvidenceSigner.Sign(stretched, _key));

        Assert.False(result.IsValid);
        Assert.Equal(EvidenceRejection.ReadingOutsideRecordTime, result.Reason);
        Assert.Contains("reading 0 ('water_leak') is timed -600 s from its record", result.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-60_000, true)]
    [InlineData(-60_001, false)]
    [InlineData(2_000, true)]
    [InlineData(2_001, false)]
    public void Readings_lie_within_a_minute_before_and_two_seconds_after_their_record(int offsetMs, bool valid)
    {
        var time = EvidenceSamples.Time;
        var record = new EvidenceRecord("pi-kitchen-1", 7, time, SHA256.HashData("previous record"u8),
            [new Reading("temperature", "Cel", 21.5, time.AddMilliseconds(offsetMs))], []);

        Assert.Equal(valid, Verify(EvidenceSigner.Sign(record, _key)).IsValid);
    }

    [Fact]
    public void Every_truncation_is_rejected_as_malformed_cose()
    {
        for (var length = 0; length < _cose.Length; length++)
        {
            var result = Verify(_cose[..length]);
            Assert.False(result.IsValid);
            Assert.Equal(EvidenceRejection.MalformedCose, result.Reason);
        }
    }

    [Fact]
    public void Bit_flip_in_the_payload_is_a_bad_signature()
    {
        var payload = EvidencePayload.Encode(EvidenceSamples.Record());
        var offset = _cose.AsSpan().IndexOf(payload);
        Assert.True(offset > 0);
        for (var i = 0; i < payload.Length; i += 7)
        {
            var tampered = (byte[])_cose.Clone();
            tampered[offset + i] ^= 0x01;
            var result = Verify(tampered);
            Assert.Equal(EvidenceRejection.BadSignature, result.Reason);
            Assert.Null(result.Record);
        }
    }

    [Fact]
    public void Bit_flip_in_the_signature_is_a_bad_signature()
    {
        foreach (var fromEnd in new[] { 1, 20, 33, 64 })
        {
            var tampered = (byte[])_cose.Clone();
            tampered[^fromEnd] ^= 0x80;
            Assert.Equal(EvidenceRejection.BadSignature, Verify(tampered).Reason);
        }
    }

    [Fact]
    public void Record_re_signed_by_another_key_is_a_bad_signature()
    {
        using var attacker = EvidenceSamples.NewKey();
        var forged = EvidenceSigner.Sign(EvidenceSamples.Record(), attacker);
        var result = Verify(forged);
        Assert.Equal(EvidenceRejection.BadSignature, result.Reason);
        Assert.Equal("pi-kitchen-1", result.DeviceId);
    }

    [Fact]
    public void Record_from_an_unenrolled_device_is_an_unknown_key()
    {
        var other = EvidenceSigner.Sign(EvidenceSamples.Record(deviceId: "stranger"), _key);
        var result = Verify(other);
        Assert.Equal(EvidenceRejection.UnknownKey, result.Reason);
        Assert.Equal("stranger", result.DeviceId);
    }

    [Fact]
    public void Oversized_record_is_rejected_before_decoding()
    {
        Assert.Equal(EvidenceRejection.TooLarge, Verify(_cose, new EvidenceLimits { MaxRecordBytes = _cose.Length - 1 }).Reason);
        Assert.True(Verify(_cose, new EvidenceLimits { MaxRecordBytes = _cose.Length }).IsValid);

        var huge = new EvidenceRecord("pi-kitchen-1", 1, EvidenceSamples.Time, ReadOnlyMemory<byte>.Empty, [], [new SensorFault("gps", new string('x', 70_000))]);
        Assert.Equal(EvidenceRejection.TooLarge, Verify(EvidenceSigner.Sign(huge, _key)).Reason);
    }

    [Fact]
    public void Payload_of_another_version_is_a_wrong_version()
    {
        var v2 = EvidenceSigner.SignPayload(EvidencePayload.Encode(EvidenceSamples.Record(), version: 2), "pi-kitchen-1", _key);
        var result = Verify(v2);
        Assert.Equal(EvidenceRejection.WrongVersion, result.Reason);
        Assert.Contains("version 2", result.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Correctly_signed_garbage_is_malformed_cbor()
    {
        foreach (var payload in new[] { "not cbor at all"u8.ToArray(), [0xA1, 0x01], [0x1F], [], [0xA7, 0x01, 0x01], [0x81, 0x01] })
        {
            var cose = EvidenceSigner.SignPayload(payload, "pi-kitchen-1", _key);
            Assert.Equal(EvidenceRejection.MalformedCbor, Verify(cose).Reason);
        }
    }

    [Fact]
    public void Non_deterministic_encoding_of_a_valid_payload_is_malformed_cbor()
    {
        // Same content as a valid payload, but the version written as a two-byte integer (RFC 8949 §4.2.1 requires the shortest form).
        var payload = EvidencePayload.Encode(EvidenceSamples.Record());
        Assert.Equal([0xA7, 0x01, 0x01], payload[..3]);
        var longForm = new byte[] { 0xA7, 0x01, 0x18, 0x01 }.Concat(payload[3..]).ToArray();
        Assert.Equal(EvidenceRejection.MalformedCbor, Verify(EvidenceSigner.SignPayload(longForm, "pi-kitchen-1", _key)).Reason);
    }

    [Fact]
    public void Unstructured_bytes_are_malformed_cose()
    {
        foreach (var bytes in new[] { Array.Empty<byte>(), "hello"u8.ToArray(), [0xD2, 0x84], [0x84, 0x40, 0xA0, 0x40], RandomNumberGenerator.GetBytes(300) })
        {
            Assert.Equal(EvidenceRejection.MalformedCose, Verify(bytes).Reason);
        }

        // A well-formed but empty COSE_Sign1 (no headers, detached payload) fails at its missing alg.
        Assert.Equal(EvidenceRejection.WrongAlgorithm, Verify([0x84, 0x40, 0xA0, 0xF6, 0x40]).Reason);
    }

    [Fact]
    public void Other_algorithms_are_a_wrong_algorithm()
    {
        var headers = new CoseHeaderMap
        {
            { CoseHeaderLabel.KeyIdentifier, "pi-kitchen-1"u8.ToArray() },
            { CoseHeaderLabel.ContentType, EvidenceFormat.PayloadContentType },
        };
        var es384 = CoseSign1Message.SignEmbedded(EvidencePayload.Encode(EvidenceSamples.Record()), new CoseSigner(_key, HashAlgorithmName.SHA384, headers));
        var result = Verify(es384);
        Assert.Equal(EvidenceRejection.WrongAlgorithm, result.Reason);
        Assert.Contains("-35", result.Detail, StringComparison.Ordinal);

        using var rsa = RSA.Create(2048);
        var ps256 = CoseSign1Message.SignEmbedded(EvidencePayload.Encode(EvidenceSamples.Record()), new CoseSigner(rsa, RSASignaturePadding.Pss, HashAlgorithmName.SHA256, headers));
        Assert.Equal(EvidenceRejection.WrongAlgorithm, Verify(ps256).Reason);
    }

    [Fact]
    public void Kid_only_in_the_unprotected_header_is_a_missing_key_id()
    {
        var unprotectedHeaders = new CoseHeaderMap { { CoseHeaderLabel.KeyIdentifier, "pi-kitchen-1"u8.ToArray() } };
        var protectedHeaders = new CoseHeaderMap { { CoseHeaderLabel.ContentType, EvidenceFormat.PayloadContentType } };
        var cose = CoseSign1Message.SignEmbedded(EvidencePayload.Encode(EvidenceSamples.Record()), new CoseSigner(_key, HashAlgorithmName.SHA256, protectedHeaders, unprotectedHeaders));
        Assert.Equal(EvidenceRejection.MissingKeyId, Verify(cose).Reason);
    }

    [Fact]
    public void Payload_naming_another_device_than_the_kid_is_a_device_mismatch()
    {
        var cose = EvidenceSigner.SignPayload(EvidencePayload.Encode(EvidenceSamples.Record(deviceId: "pi-hall-2")), "pi-kitchen-1", _key);
        Assert.Equal(EvidenceRejection.DeviceMismatch, Verify(cose).Reason);
    }

    [Fact]
    public void Too_many_readings_or_too_long_strings_exceed_the_limits()
    {
        Assert.Equal(EvidenceRejection.LimitExceeded, Verify(_cose, new EvidenceLimits { MaxReadings = 3 }).Reason);
        Assert.Equal(EvidenceRejection.LimitExceeded, Verify(_cose, new EvidenceLimits { MaxFaults = 0 }).Reason);
        Assert.Equal(EvidenceRejection.LimitExceeded, Verify(_cose, new EvidenceLimits { MaxStringBytes = 10 }).Reason);
    }

    [Fact]
    public void Detached_payload_is_malformed_cose()
    {
        var headers = new CoseHeaderMap
        {
            { CoseHeaderLabel.KeyIdentifier, "pi-kitchen-1"u8.ToArray() },
            { CoseHeaderLabel.ContentType, EvidenceFormat.PayloadContentType },
        };
        var detached = CoseSign1Message.SignDetached(EvidencePayload.Encode(EvidenceSamples.Record()), new CoseSigner(_key, HashAlgorithmName.SHA256, headers));
        Assert.Equal(EvidenceRejection.MalformedCose, Verify(detached).Reason);
    }

    [Fact]
    public void Invalid_utf8_in_a_signed_payload_is_malformed_cbor()
    {
        var writer = new CborWriter(CborConformanceMode.Lax);
        writer.WriteStartMap(7);
        writer.WriteUInt32(1);
        writer.WriteUInt32(1);
        writer.WriteUInt32(2);
        writer.WriteEncodedValue(new byte[] { 0x62, 0xC3, 0x28 }); // text string of 2 bytes, invalid UTF-8
        writer.WriteUInt32(3);
        writer.WriteUInt32(1);
        writer.WriteUInt32(4);
        writer.WriteUInt32(1);
        writer.WriteUInt32(5);
        writer.WriteByteString([]);
        writer.WriteUInt32(6);
        writer.WriteStartArray(0);
        writer.WriteEndArray();
        writer.WriteUInt32(7);
        writer.WriteStartArray(0);
        writer.WriteEndArray();
        writer.WriteEndMap();
        var cose = EvidenceSigner.SignPayload(writer.Encode(), "pi-kitchen-1", _key);
        Assert.Equal(EvidenceRejection.MalformedCbor, Verify(cose).Reason);
    }

    [Fact]
    public void Random_mutations_never_throw_and_never_change_what_a_valid_record_says()
    {
        var random = new Random(20261124);
        var original = Verify(_cose).Record!;
        var valid = 0;
        for (var i = 0; i < 3000; i++)
        {
            var mutated = Mutate(_cose, random);
            var result = Verify(mutated);
            Assert.Equal(result.IsValid, result.Record is not null);
            Assert.False(string.IsNullOrEmpty(result.Detail));
            if (result.IsValid)
            {
                valid++;
                Assert.Equal(original.Sequence, result.Record!.Sequence);
                Assert.Equal(original.Readings, result.Record.Readings);
            }

            _ = EvidenceVerifier.PeekDeviceId(mutated);
        }

        Assert.True(valid < 30, $"{valid} mutations verified");
    }

    private static byte[] Mutate(byte[] source, Random random)
    {
        var bytes = new List<byte>(source);
        for (var n = random.Next(1, 4); n > 0; n--)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes[at] = (byte)random.Next(256); break;
                case 2: bytes.RemoveAt(at); break;
                case 3: bytes.Insert(at, (byte)random.Next(256)); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }

            if (bytes.Count == 0)
            {
                break;
            }
        }

        return [.. bytes];
    }

    [Fact]
    public void Detail_never_contains_the_payload_strings()
    {
        using var attacker = EvidenceSamples.NewKey();
        var result = Verify(EvidenceSigner.Sign(EvidenceSamples.Record(), attacker));
        Assert.DoesNotContain("no NMEA", result.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("no NMEA", result.ToString(), StringComparison.Ordinal);
        _ = Encoding.UTF8;
    }
}
