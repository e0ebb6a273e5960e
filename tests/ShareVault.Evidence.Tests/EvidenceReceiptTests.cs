namespace ShareVault.Evidence.Tests;

public sealed class EvidenceReceiptTests
{
    [Fact]
    public void Receipt_round_trips_as_json_and_matches_its_record()
    {
        var cose = new byte[] { 1, 2, 3 };
        var receipt = EvidenceReceipt.For("pi-1", 42, cose, ReceiptStatus.Stored);
        var json = System.Text.Encoding.UTF8.GetString(receipt.Encode());
        Assert.Equal($"{{\"device\":\"pi-1\",\"seq\":42,\"hash\":\"{Convert.ToHexStringLower(EvidenceRecord.Hash(cose))}\",\"status\":\"stored\",\"reason\":null}}", json);

        Assert.True(EvidenceReceipt.TryDecode(receipt.Encode(), out var decoded));
        Assert.Equal(receipt, decoded);
        Assert.True(decoded!.Matches(cose));
        Assert.False(decoded.Matches([1, 2, 4]));
        Assert.True(decoded.ReleasesRecord);
    }

    [Fact]
    public void Rejected_receipt_keeps_its_reason_and_does_not_release_the_record()
    {
        var receipt = EvidenceReceipt.For("pi-1", null, [9], ReceiptStatus.Rejected, nameof(EvidenceRejection.BadSignature));
        Assert.True(EvidenceReceipt.TryDecode(receipt.Encode(), out var decoded));
        Assert.Equal("BadSignature", decoded!.Reason);
        Assert.Null(decoded.Sequence);
        Assert.False(decoded.ReleasesRecord);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"00\",\"status\":\"stored\"}")]
    [InlineData("{\"device\":\"a/b\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}")]
    [InlineData("{\"device\":\"pi-1\",\"seq\":-1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}")]
    [InlineData("{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"maybe\"}")]
    [InlineData("{\"device\":\"pi-1\",\"seq\":\"1\",\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}")]
    [InlineData("{\"device\":1}")]
    [InlineData("{")]
    public void Malformed_receipts_are_refused_without_exceptions(string json)
    {
        Assert.False(EvidenceReceipt.TryDecode(System.Text.Encoding.UTF8.GetBytes(json), out var receipt));
        Assert.Null(receipt);
    }

    [Fact]
    public void A_receipt_list_round_trips_in_order_and_a_single_receipt_decodes_as_a_list_of_one()
    {
        var receipts = new[]
        {
            EvidenceReceipt.For("pi-1", 7, [7], ReceiptStatus.Stored),
            EvidenceReceipt.For("pi-1", 8, [8], ReceiptStatus.Duplicate),
            EvidenceReceipt.For("pi-1", 9, [9], ReceiptStatus.Rejected, "TimeOutOfWindow"),
        };
        var encoded = EvidenceReceipt.EncodeList(receipts);
        Assert.StartsWith("[{\"device\":\"pi-1\",\"seq\":7,", System.Text.Encoding.UTF8.GetString(encoded), StringComparison.Ordinal);
        Assert.True(EvidenceReceipt.TryDecodeList(encoded, out var decoded));
        Assert.Equal(receipts, decoded);

        Assert.True(EvidenceReceipt.TryDecodeList(receipts[0].Encode(), out var one));
        Assert.Equal(receipts[0], Assert.Single(one));

        // A list is not a single receipt: a device that never asked for lists does not mistake one for a receipt.
        Assert.False(EvidenceReceipt.TryDecode(encoded, out _));
    }

    [Fact]
    public void A_receipt_list_holds_one_device_and_at_most_its_limit()
    {
        Assert.Throws<ArgumentException>(() => EvidenceReceipt.EncodeList([EvidenceReceipt.For("pi-1", 1, [1], ReceiptStatus.Stored), EvidenceReceipt.For("pi-2", 1, [1], ReceiptStatus.Stored)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvidenceReceipt.EncodeList([]));
        var tooMany = Enumerable.Range(0, EvidenceReceipt.MaxListLength + 1).Select(i => EvidenceReceipt.For("pi-1", i, [(byte)i], ReceiptStatus.Stored)).ToList();
        Assert.Throws<ArgumentOutOfRangeException>(() => EvidenceReceipt.EncodeList(tooMany));
        Assert.True(EvidenceReceipt.TryDecodeList(EvidenceReceipt.EncodeList(tooMany[..EvidenceReceipt.MaxListLength]), out var full));
        Assert.Equal(EvidenceReceipt.MaxListLength, full.Count);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("[1]")]
    [InlineData("[[]]")]
    [InlineData("[{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"00\",\"status\":\"stored\"}]")]
    [InlineData("{\"receipts\":[]}")]
    [InlineData("[{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"},"
        + "{\"device\":\"pi-2\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}]")]
    [InlineData("[{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}")]
    public void Malformed_receipt_lists_are_refused_whole_without_exceptions(string json)
    {
        Assert.False(EvidenceReceipt.TryDecodeList(System.Text.Encoding.UTF8.GetBytes(json), out var receipts));
        Assert.Empty(receipts);
    }

    [Fact]
    public void An_oversized_receipt_list_is_refused_before_it_is_parsed()
    {
        var entry = "{\"device\":\"pi-1\",\"seq\":1,\"hash\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"status\":\"stored\"}";
        var json = "[" + string.Join(",", Enumerable.Repeat(entry, (EvidenceReceipt.MaxEncodedListBytes / entry.Length) + 1)) + "]";
        Assert.False(EvidenceReceipt.TryDecodeList(System.Text.Encoding.UTF8.GetBytes(json), out _));
    }

    [Fact]
    public void Topics_follow_the_documented_layout_and_parse_back()
    {
        Assert.Equal("sharevault/v1/devices/pi-1/evidence", EvidenceTopics.Evidence("pi-1"));
        Assert.Equal("sharevault/v1/devices/pi-1/status", EvidenceTopics.Status("pi-1"));
        Assert.Equal("sharevault/v1/devices/pi-1/receipts", EvidenceTopics.Receipts("pi-1"));
        Assert.Equal("$share/claims/sharevault/v1/devices/+/evidence", EvidenceTopics.SharedEvidence("claims"));
        Assert.True(EvidenceTopics.TryParse("sharevault/v1/devices/pi-1/evidence", out var id, out var kind));
        Assert.Equal(("pi-1", EvidenceTopicKind.Evidence), (id, kind));
        Assert.True(EvidenceTopics.TryParse(EvidenceTopics.For("pi-1", EvidenceTopicKind.Receipts), out _, out var receipts));
        Assert.Equal(EvidenceTopicKind.Receipts, receipts);
        Assert.False(EvidenceTopics.TryParse("sharevault/v1/devices/pi-1/other", out _, out _));
        Assert.False(EvidenceTopics.TryParse("sharevault/v1/devices/pi-1/evidence/x", out _, out _));
        Assert.Throws<ArgumentException>(() => EvidenceTopics.Evidence("a/#"));
    }

    [Fact]
    public void Device_status_round_trips()
    {
        var status = new DeviceStatus(true, 41, 3, 0);
        Assert.Equal("{\"state\":\"online\",\"seq\":41,\"outbox\":3,\"outboxFull\":0}", System.Text.Encoding.UTF8.GetString(status.Encode()));
        Assert.True(DeviceStatus.TryDecode(status.Encode(), out var decoded));
        Assert.Equal(status, decoded);
        Assert.True(DeviceStatus.TryDecode("{\"state\":\"offline\"}"u8, out var offline));
        Assert.False(offline!.Online);
        Assert.False(DeviceStatus.TryDecode("{\"state\":3}"u8, out _));
    }
}
