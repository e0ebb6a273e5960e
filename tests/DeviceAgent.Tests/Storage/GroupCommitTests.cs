using System.Diagnostics;
using System.Security.Cryptography;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;
using ShareVault.Evidence;

namespace DeviceAgent.Tests.Storage;

/// <summary>
/// The outbox commits in groups: records queued while a commit is in flight share the next fsync,
/// and a record is acknowledged only after the fsync that covers it, so whatever was acknowledged
/// survives the process being killed.
/// </summary>
public sealed class GroupCommitTests
{
    [Fact]
    public async Task Records_queued_during_a_commit_share_the_next_fsync_and_none_is_acknowledged_before_it()
    {
        using var dir = new TempDir();
        const int Records = 2000;
        using (var outbox = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = int.MaxValue }))
        {
            // The first record's commit is held before its write; everything queued meanwhile waits for the next one.
            using var writing = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            outbox.BeforeGroupWrite = () =>
            {
                if (!writing.IsSet)
                {
                    writing.Set();
                    release.Wait();
                }
            };

            var acknowledged = new List<Task<OutboxEntry>> { outbox.AddAsync(1, BitConverter.GetBytes(1L)) };
            Assert.True(writing.Wait(TimeSpan.FromSeconds(30)), "the committer never started");
            for (long seq = 2; seq <= Records; seq++)
            {
                acknowledged.Add(outbox.AddAsync(seq, BitConverter.GetBytes(seq)));
            }

            Assert.All(acknowledged, t => Assert.False(t.IsCompleted, "acknowledged before any fsync"));
            Assert.Equal(0, outbox.GroupCommits);
            Assert.Empty(outbox.Snapshot()); // delivery sees nothing that is not durable
            release.Set();
            await Task.WhenAll(acknowledged).WaitAsync(TimeSpan.FromSeconds(60));

            // Two fsyncs for 2 000 records: the held one's, and one for all queued behind it.
            Assert.Equal(2, outbox.GroupCommits);
            Assert.Equal(Enumerable.Range(1, Records).Select(i => (long)i), outbox.Snapshot().Select(e => e.Sequence));
        }

        using var reopened = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = int.MaxValue });
        Assert.Equal(Records, reopened.Count);
        Assert.All(reopened.Snapshot(), e => Assert.Equal(BitConverter.GetBytes(e.Sequence), reopened.Read(e)));
    }

    [Fact]
    public async Task Pipeline_records_made_during_a_commit_share_the_next_and_the_chain_and_state_survive_reopening()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        const int Records = 300;
        using (var outbox = Outbox.Open(dir.Sub("outbox"), new OutboxLimits { MaxRecords = int.MaxValue }))
        using (var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, TimeProvider.System))
        {
            using var writing = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            outbox.BeforeGroupWrite = () =>
            {
                if (!writing.IsSet)
                {
                    writing.Set();
                    release.Wait();
                }
            };

            var first = pipeline.CaptureAsync();
            Assert.True(writing.Wait(TimeSpan.FromSeconds(30)), "the committer never started");
            var rest = Enumerable.Range(1, Records - 1).Select(_ => pipeline.CaptureAsync()).ToList();
            Assert.False(first.IsCompleted);
            Assert.Equal(0, pipeline.RecordsMade); // signed, but not acknowledged before the fsync
            release.Set();
            var made = await Task.WhenAll([first, .. rest]).WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(2, outbox.GroupCommits);
            Assert.Equal(Records, outbox.Count);
            Assert.Equal(Enumerable.Range(1, Records).Select(i => (long)i), made.Select(r => r.Record.Sequence));
        }

        using var reopened = Outbox.Open(dir.Sub("outbox"), new OutboxLimits { MaxRecords = int.MaxValue });
        var records = reopened.Snapshot().Select(e => EvidenceVerifier.Verify(reopened.Read(e), _ => key).Record!).ToList();
        for (var i = 1; i < records.Count; i++)
        {
            Assert.True(records[i].Follows(reopened.Read(reopened.Snapshot()[i - 1])), $"record {records[i].Sequence} does not follow its predecessor");
        }

        var state = SequenceState.Open(dir.Path, reopened);
        Assert.Equal(Records, state.LastSequence);
        Assert.Equal(Records + 1, state.NextSequence);
    }

    [Fact]
    public async Task Every_record_acknowledged_before_the_agent_is_SIGKILLed_is_on_disk_and_the_chain_continues()
    {
        using var dir = new TempDir();
        var acked = new Dictionary<long, string>();
        var probe = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        probe.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "DeviceAgent.CrashProbe.dll"));
        probe.ArgumentList.Add(dir.Path);
        using (var child = Process.Start(probe)!)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
                while (acked.Count < 1500)
                {
                    var line = await child.StandardOutput.ReadLineAsync(timeout.Token)
                        ?? throw new InvalidOperationException("probe ended early: " + await child.StandardError.ReadToEndAsync(timeout.Token));
                    var parts = line.Split(' ');
                    acked[long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)] = parts[2];
                }
            }
            finally
            {
                child.Kill(); // SIGKILL: no finalisers, no Dispose, mid-commit
                await child.WaitForExitAsync();
            }
        }

        using var outbox = Outbox.Open(dir.Sub("outbox"), new OutboxLimits { MaxRecords = int.MaxValue });
        var onDisk = outbox.Snapshot().ToDictionary(e => e.Sequence, e => e.Hash);
        Assert.All(acked, a => Assert.Equal(a.Value, onDisk.GetValueOrDefault(a.Key)));
        Assert.All(outbox.Snapshot(), e => Assert.Equal(e.Hash, Convert.ToHexStringLower(EvidenceRecord.Hash(outbox.Read(e)!))));

        // The chain continues from the newest durable record with a number never used by a durable one.
        var state = SequenceState.Open(dir.Path, outbox);
        var newest = outbox.Newest!;
        Assert.Equal(newest.Sequence, state.LastSequence);
        Assert.True(state.NextSequence > newest.Sequence);
        Assert.Equal(newest.Hash, Convert.ToHexStringLower(state.PreviousHash.Span));
    }
}
