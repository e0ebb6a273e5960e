using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;

namespace DeviceAgent.Tests.Storage;

public sealed class OutboxTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 24, 10, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Records_survive_reopening_in_sequence_order_until_released()
    {
        using var dir = new TempDir();
        string hash2;
        using (var outbox = Outbox.Open(dir.Path))
        {
            outbox.Add(1, [1]);
            hash2 = outbox.Add(2, [2, 2]).Hash;
            outbox.Add(3, [3, 3, 3]);
            Assert.True(outbox.Release(outbox.Snapshot()[0].Hash));
            Assert.False(outbox.Release("00"));
        }

        using var reopened = Outbox.Open(dir.Path);
        Assert.Equal([2L, 3L], reopened.Snapshot().Select(e => e.Sequence));
        Assert.Equal(5, reopened.Bytes);
        Assert.Equal([2, 2], reopened.Read(reopened.Snapshot()[0]));
        Assert.True(reopened.Contains(hash2));
    }

    [Fact]
    public void Half_written_temporary_files_from_a_crash_are_discarded()
    {
        using var dir = new TempDir();
        using (var outbox = Outbox.Open(dir.Path))
        {
            outbox.Add(1, [1]);
        }

        File.WriteAllBytes(Path.Combine(dir.Path, ".0000000000000000002-1.cose.tmp"), [9, 9]);
        using var reopened = Outbox.Open(dir.Path);
        Assert.Single(reopened.Snapshot());
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Full_outbox_drops_the_oldest_records_and_counts_them()
    {
        using var dir = new TempDir();
        using (var outbox = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = 3 }))
        {
            for (var seq = 1; seq <= 5; seq++)
            {
                outbox.Add(seq, [(byte)seq]);
            }

            Assert.Equal([3L, 4L, 5L], outbox.Snapshot().Select(e => e.Sequence));
            Assert.Equal(2, outbox.DroppedWhenFull);
        }

        using var reopened = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = 3 });
        Assert.Equal([3L, 4L, 5L], reopened.Snapshot().Select(e => e.Sequence));
    }

    [Fact]
    public void Byte_limit_also_bounds_the_outbox()
    {
        using var dir = new TempDir();
        using var outbox = Outbox.Open(dir.Path, new OutboxLimits { MaxBytes = 250 });
        for (var seq = 1; seq <= 4; seq++)
        {
            outbox.Add(seq, new byte[100]);
        }

        Assert.Equal(2, outbox.Count);
        Assert.Equal(200, outbox.Bytes);
        Assert.Equal(2, outbox.DroppedWhenFull);
    }

    [Fact]
    public void Records_older_than_the_age_limit_expire()
    {
        using var dir = new TempDir();
        var time = new ManualTime(Start);
        using var outbox = Outbox.Open(dir.Path, new OutboxLimits { MaxAge = TimeSpan.FromHours(1) }, time);
        outbox.Add(1, [1]);
        time.Advance(TimeSpan.FromMinutes(30));
        outbox.Add(2, [2]);
        time.Advance(TimeSpan.FromMinutes(45));
        outbox.Add(3, [3]);

        Assert.Equal([2L, 3L], outbox.Snapshot().Select(e => e.Sequence));
        Assert.Equal(1, outbox.Expired);
        Assert.Equal(0, outbox.DroppedWhenFull);
    }

    [Fact]
    public void Rejected_records_are_moved_aside_not_resent()
    {
        using var dir = new TempDir();
        using var outbox = Outbox.Open(dir.Path);
        var entry = outbox.Add(1, [1]);
        Assert.True(outbox.Reject(entry.Hash));
        Assert.Empty(outbox.Snapshot());
        Assert.Equal(1, outbox.Rejected);
        Assert.Single(Directory.GetFiles(Path.Combine(dir.Path, "rejected")));
    }

    [Fact]
    public void Adding_a_sequence_twice_is_refused()
    {
        using var dir = new TempDir();
        using var outbox = Outbox.Open(dir.Path);
        outbox.Add(1, [1]);
        Assert.Throws<InvalidOperationException>(() => outbox.Add(1, [2]));
    }
}
