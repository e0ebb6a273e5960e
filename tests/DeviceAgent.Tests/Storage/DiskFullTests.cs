using DeviceAgent.Storage;
using ShareVault.TestSupport;

namespace DeviceAgent.Tests.Storage;

/// <summary>The outbox on a disk that fills up: a clear error, no accepted record lost, recovery when space returns.</summary>
public sealed class DiskFullTests
{
    private const int ENOSPC = 28;

    [Fact]
    public void A_full_disk_refuses_the_next_record_clearly_keeps_every_accepted_one_and_recovers_when_space_returns()
    {
        using var disk = new SmallDisk(256);
        var record = new byte[16 * 1024];
        var accepted = new List<long>();
        IOException? full = null;
        using (var outbox = Outbox.Open(Path.Combine(disk.Path, "outbox")))
        {
            for (long seq = 1; seq < 100 && full is null; seq++)
            {
                record[0] = (byte)seq;
                try
                {
                    outbox.Add(seq, record);
                    accepted.Add(seq);
                }
                catch (IOException e)
                {
                    full = e;
                }
            }

            Assert.NotNull(full);
            Assert.Equal(ENOSPC, full.HResult & 0xFFFF);
            Assert.Contains("No space left on device", full.Message, StringComparison.Ordinal);
            Assert.InRange(accepted.Count, 5, 20);
            // The half-written temporary file is gone, so the space it took is not lost either.
            Assert.Empty(Directory.GetFiles(Path.Combine(disk.Path, "outbox"), ".*.tmp"));
            Assert.Equal(accepted, outbox.Snapshot().Select(e => e.Sequence));

            disk.Grow(1024);
            var next = accepted[^1] + 1;
            outbox.Add(next, record);
            accepted.Add(next);
        }

        using var reopened = Outbox.Open(Path.Combine(disk.Path, "outbox"));
        Assert.Equal(accepted, reopened.Snapshot().Select(e => e.Sequence));
        foreach (var entry in reopened.Snapshot())
        {
            Assert.Equal(record.Length, reopened.Read(entry)!.Length);
            Assert.Equal((byte)entry.Sequence, reopened.Read(entry)![0]);
        }
    }
}
