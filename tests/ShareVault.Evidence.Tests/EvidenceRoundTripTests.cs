using System.Security.Cryptography;
using System.Security.Cryptography.Cose;

namespace ShareVault.Evidence.Tests;

public sealed class EvidenceRoundTripTests
{
    [Fact]
    public void Signed_record_verifies_and_decodes_to_the_same_fields()
    {
        using var key = EvidenceSamples.NewKey();
        var record = EvidenceSamples.Record();

        var cose = EvidenceSigner.Sign(record, key);
        var result = EvidenceVerifier.Verify(cose, id => id == "pi-kitchen-1" ? key : null);

        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(EvidenceRejection.None, result.Reason);
        var decoded = result.Record!;
        Assert.Equal(record.DeviceId, decoded.DeviceId);
        Assert.Equal(record.Sequence, decoded.Sequence);
        Assert.Equal(record.Time, decoded.Time);
        Assert.Equal(record.PreviousHash.ToArray(), decoded.PreviousHash.ToArray());
        Assert.Equal(record.Readings, decoded.Readings);
        Assert.Equal(record.Faults, decoded.Faults);
        Assert.Equal(SHA256.HashData(cose), result.Hash);
        Assert.Equal("pi-kitchen-1", result.DeviceId);
    }

    [Fact]
    public void Cose_message_is_tagged_sign1_with_es256_kid_and_content_type_in_the_protected_header()
    {
        using var key = EvidenceSamples.NewKey();
        var cose = EvidenceSigner.Sign(EvidenceSamples.Record(), key);

        Assert.Equal(0xD2, cose[0]); // CBOR tag 18, COSE_Sign1 (RFC 9052 §2)
        var message = CoseMessage.DecodeSign1(cose);
        Assert.Equal(-7, message.ProtectedHeaders[CoseHeaderLabel.Algorithm].GetValueAsInt32());
        Assert.Equal("pi-kitchen-1"u8.ToArray(), message.ProtectedHeaders[CoseHeaderLabel.KeyIdentifier].GetValueAsBytes());
        Assert.Equal(EvidenceFormat.PayloadContentType, message.ProtectedHeaders[CoseHeaderLabel.ContentType].GetValueAsString());
        Assert.Empty(message.UnprotectedHeaders);
    }

    [Fact]
    public void Payload_encoding_is_deterministic_and_uses_shortest_floats()
    {
        var record = EvidenceSamples.Record();
        var first = EvidencePayload.Encode(record);
        var second = EvidencePayload.Encode(record);
        Assert.Equal(first, second);

        // 21.5 fits a half-precision float (RFC 8949 §4.2.1 preferred serialization): f9 4d 60.
        Assert.Contains("02f94d60", Convert.ToHexStringLower(first), StringComparison.Ordinal);
        // 101325.3 needs double precision: fb ...
        Assert.Contains("02fb40f8bcd4cccccccd", Convert.ToHexStringLower(first), StringComparison.Ordinal);
    }

    [Fact]
    public void First_record_of_a_chain_has_an_empty_previous_hash_and_the_next_follows_it()
    {
        using var key = EvidenceSamples.NewKey();
        var first = EvidenceSigner.Sign(EvidenceSamples.Record(sequence: 1, previous: []), key);
        var second = EvidenceSamples.Record(sequence: 2, previous: EvidenceRecord.Hash(first));

        var decodedFirst = EvidenceVerifier.Verify(first, _ => key).Record!;
        Assert.True(decodedFirst.IsChainStart);
        Assert.True(second.Follows(first));
        Assert.False(second.Follows(EvidenceSigner.Sign(EvidenceSamples.Record(sequence: 1, previous: []), key)));
    }

    [Fact]
    public void Record_with_nothing_to_say_round_trips()
    {
        using var key = EvidenceSamples.NewKey();
        var record = new EvidenceRecord("d", 0, EvidenceSamples.Time, ReadOnlyMemory<byte>.Empty, []);
        var result = EvidenceVerifier.Verify(EvidenceSigner.Sign(record, key), _ => key);
        Assert.True(result.IsValid, result.ToString());
        Assert.Empty(result.Record!.Readings);
        Assert.Empty(result.Record.Faults);
    }

    [Fact]
    public void Hardware_style_ecdsa_that_only_signs_hashes_produces_verifiable_evidence()
    {
        using var inner = EvidenceSamples.NewKey();
        using var hashOnly = new HashOnlyECDsa(inner);
        var cose = EvidenceSigner.Sign(EvidenceSamples.Record(), hashOnly);
        Assert.True(EvidenceVerifier.Verify(cose, _ => inner).IsValid);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("dev+")]
    [InlineData("dev#")]
    [InlineData("..")]
    [InlineData("spaces are not allowed")]
    public void Device_ids_that_cannot_be_topic_levels_are_refused(string deviceId)
    {
        Assert.Throws<ArgumentException>(() => new EvidenceRecord(deviceId, 1, EvidenceSamples.Time, ReadOnlyMemory<byte>.Empty, []));
    }

    [Fact]
    public void Non_finite_values_and_non_p256_keys_are_refused_when_signing()
    {
        Assert.Throws<ArgumentException>(() => new EvidenceRecord("d", 1, EvidenceSamples.Time, ReadOnlyMemory<byte>.Empty, [new Reading("temperature", "Cel", double.NaN, EvidenceSamples.Time)]));
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        Assert.Throws<ArgumentException>(() => EvidenceSigner.Sign(EvidenceSamples.Record(), p384));
    }

    /// <summary>Like ShareVault.Hardware.HardwareECDsa: only SignHash and HashData, no private export.</summary>
    private sealed class HashOnlyECDsa(ECDsa inner) : ECDsa
    {
        public override int KeySize { get => 256; set => throw new NotSupportedException(); }

        public override byte[] SignHash(byte[] hash) => inner.SignHash(hash);

        public override bool VerifyHash(byte[] hash, byte[] signature) => inner.VerifyHash(hash, signature);

        public override ECParameters ExportParameters(bool includePrivateParameters) =>
            includePrivateParameters ? throw new CryptographicException("no export") : inner.ExportParameters(false);

        protected override byte[] HashData(byte[] data, int offset, int count, HashAlgorithmName hashAlgorithm) =>
            SHA256.HashData(data.AsSpan(offset, count));
    }
}
