using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Service.Tests;

/// <summary>
/// Evidence time a device cannot stretch, through the real ingest pipeline and engine (SQLite): a
/// record lies in the window around its arrival, is not timed behind its device's previous record,
/// and one record cannot claim a duration. Each refusal is receipted, counted and stored with its reason.
/// </summary>
public sealed class EvidenceTimeTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task A_burst_of_records_backdated_behind_the_devices_last_record_is_refused_counted_and_opens_no_claim()
    {
        var clock = new ManualClock(Now);
        await using var rig = await IngestPipelineTests.Rig.CreateAsync(1, new IngestOptions(), clock);
        var device = rig.Devices[0];

        // An honest history: dry, one record a minute, the last one made just now (seq 0-10).
        var honest = device.Quiet(Now.AddMinutes(-10), 11);
        await rig.Ingest.ProcessBatchAsync([.. honest.Select(c => rig.Message(0, c))], default);

        // The attack: eleven wet records made at once, timed over the ten minutes already reported,
        // so that "water_leak == 1 for 10m" would be met by a burst (seq 11-21).
        var forged = Enumerable.Range(0, 11).Select(i => device.Next(Now.AddMinutes(i - 10), new Reading("water_leak", null, 1, Now.AddMinutes(i - 10)))).ToList();
        await rig.Ingest.ProcessBatchAsync([.. forged.Select(c => rig.Message(0, c))], default);
        clock.Advance(TimeSpan.FromMinutes(5)); // past the gap timeout: evaluation moves past the refused records
        await rig.Engine.AdvancePastStaleGapsAsync(default);

        Assert.Empty(rig.Violations);
        Assert.Empty(rig.Engine.ListClaims());
        var refused = rig.Receipts.Where(r => r.Status == ReceiptStatus.Rejected).ToList();
        Assert.Equal(Enumerable.Range(11, 10).Select(i => (long?)i), refused.Select(r => r.Sequence)); // the last one, timed now, follows #10
        Assert.All(refused, r => Assert.Equal(RejectionRow.RecordTimeBeforePrevious, r.Reason));
        Assert.Equal(10, rig.Ingest.Metrics.Rejections[RejectionRow.RecordTimeBeforePrevious]);
        Assert.Equal(10, rig.Engine.RejectionCounts()[RejectionRow.RecordTimeBeforePrevious]);
        var first = Assert.Single(rig.Engine.Rejections(device.Id), r => r.Sequence == 11);
        Assert.Equal("record time 2026-03-01T11:50:00.0000000Z is 600 s before that of #10 (2026-03-01T12:00:00.0000000Z); at most 2 s is allowed", first.Detail);
        Assert.NotNull(rig.Engine.EvidenceRecord(device.Id, 21));
    }

    [Theory]
    [InlineData(2_000, true)]
    [InlineData(2_001, false)]
    public async Task A_record_may_step_back_two_seconds_behind_its_predecessor_and_no_further(int backMs, bool stored)
    {
        var clock = new ManualClock(Now);
        await using var rig = await IngestPipelineTests.Rig.CreateAsync(1, new IngestOptions(), clock);
        var device = rig.Devices[0];
        var records = new[]
        {
            device.Next(Now.AddMinutes(-1), new Reading("water_leak", null, 0, Now.AddMinutes(-1))),
            device.Next(Now.AddMinutes(-1).AddMilliseconds(-backMs), new Reading("water_leak", null, 0, Now.AddMinutes(-1).AddMilliseconds(-backMs))),
        };

        await rig.Ingest.ProcessBatchAsync([.. records.Select(c => rig.Message(0, c))], default);

        Assert.Equal(stored, rig.Engine.EvidenceRecord(device.Id, 1) is not null);
        Assert.Equal(stored ? ReceiptStatus.Stored : ReceiptStatus.Rejected, rig.Receipts[^1].Status);
    }

    [Fact]
    public async Task A_late_record_that_fills_a_gap_must_not_be_timed_after_the_record_that_follows_it()
    {
        var clock = new ManualClock(Now);
        await using var rig = await IngestPipelineTests.Rig.CreateAsync(1, new IngestOptions(), clock);
        var device = rig.Devices[0];
        var start = Now.AddMinutes(-10);
        var r0 = device.Next(start, new Reading("water_leak", null, 0, start));
        var r1 = device.Next(start.AddMinutes(5), new Reading("water_leak", null, 1, start.AddMinutes(5)));
        var r2 = device.Next(start.AddMinutes(1), new Reading("water_leak", null, 1, start.AddMinutes(1)));
        await rig.Ingest.ProcessBatchAsync([rig.Message(0, r0), rig.Message(0, r2)], default);

        // #1 arrives last: after #0, but timed 4 minutes after #2, which follows it.
        await rig.Ingest.ProcessBatchAsync([rig.Message(0, r1)], default);

        Assert.Null(rig.Engine.EvidenceRecord(device.Id, 1));
        var refusal = Assert.Single(rig.Engine.Rejections(device.Id));
        Assert.Equal((RejectionRow.RecordTimeBeforePrevious, 1L), (refusal.Reason, refusal.Sequence));
        Assert.Contains("240 s after that of the next record #2", refusal.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-7 * 24 * 60 * 60 * 1000L, true)]
    [InlineData((-7 * 24 * 60 * 60 * 1000L) - 1, false)]
    [InlineData(5 * 60 * 1000L, true)]
    [InlineData((5 * 60 * 1000L) + 1, false)]
    public async Task A_record_lies_within_seven_days_before_and_five_minutes_after_its_arrival(long offsetMs, bool stored)
    {
        var clock = new ManualClock(Now);
        await using var rig = await IngestPipelineTests.Rig.CreateAsync(1, new IngestOptions(), clock);
        var time = Now.AddMilliseconds(offsetMs);
        var record = rig.Devices[0].Next(time, new Reading("water_leak", null, 0, time));

        await rig.Ingest.ProcessBatchAsync([rig.Message(0, record)], default);

        Assert.Equal(stored, rig.Engine.EvidenceRecord(rig.Devices[0].Id, 0) is not null);
        Assert.Equal(stored ? null : RejectionRow.TimeOutOfWindow, rig.Receipts.Single().Reason);
        Assert.Equal(stored ? 0 : 1, rig.Ingest.Metrics.Rejections.GetValueOrDefault(RejectionRow.TimeOutOfWindow));
    }

    [Fact]
    public async Task The_1970_attack_is_refused_end_to_end_whether_it_stretches_one_record_or_many()
    {
        await using var rig = await IngestPipelineTests.Rig.CreateAsync(2, new IngestOptions(), new ManualClock(Now));
        var epoch = DateTimeOffset.UnixEpoch;

        // As reported: one record, two water_leak readings ten minutes apart, in 1970.
        var stretched = rig.Devices[0].Next(epoch.AddMinutes(10), new Reading("water_leak", null, 1, epoch), new Reading("water_leak", null, 1, epoch.AddMinutes(10)));

        // The same story told honestly record by record, but in 1970: each record is far before its arrival.
        var old = Enumerable.Range(0, 12).Select(i => rig.Devices[1].Next(epoch.AddMinutes(i), new Reading("water_leak", null, 1, epoch.AddMinutes(i)))).ToList();
        await rig.Ingest.ProcessBatchAsync([rig.Message(0, stretched), .. old.Select(c => rig.Message(1, c))], default);

        Assert.Empty(rig.Violations);
        Assert.Empty(rig.Engine.ListClaims());
        Assert.Equal(0, rig.Engine.EvidenceCount());
        Assert.Equal(nameof(EvidenceRejection.ReadingOutsideRecordTime), Assert.Single(rig.Receipts, r => r.DeviceId == rig.Devices[0].Id).Reason);
        Assert.All(rig.Receipts.Where(r => r.DeviceId == rig.Devices[1].Id), r => Assert.Equal(RejectionRow.TimeOutOfWindow, r.Reason));
        Assert.Equal(1, rig.Ingest.Metrics.Rejections[nameof(EvidenceRejection.ReadingOutsideRecordTime)]);
        Assert.Equal(12, rig.Ingest.Metrics.Rejections[RejectionRow.TimeOutOfWindow]);
        Assert.Equal(13, rig.Engine.RejectionCounts().Values.Sum());
    }
}
