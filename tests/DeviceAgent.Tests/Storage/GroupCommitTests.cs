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
    public async Task Records_queued_together_share_fsyncs_and_each_is_acknowledged_after_its_own()
    {
        using var dir = new TempDir();
        const int Records = 2000;
        using (var outbox = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = int.MaxValue }))
        {
            var acknowledged = new List<Task<OutboxEntry>>();
            for (long seq = 1; seq <= Records; seq++)
            {
                acknowledged.Add(outbox.AddAsync(seq, BitConverter.GetBytes(seq)));
            }

            // Each acknowledgement is counted against the fsyncs done when it arrives: the record was
            // covered by one of them.
            var fsyncsSeen = await Task.WhenAll(acknowledged.Select(async t =>
            {
                await t;
                return outbox.GroupCommits;
            }));
            Assert.All(fsyncsSeen, n => Assert.InRange(n, 1, Records));
            Assert.Equal(Enumerable.Range(1, Records).Select(i => (long)i), outbox.Snapshot().Select(e => e.Sequence));
            // 2000 appends queued from one loop in far less time than one fsync takes: they group.
            Assert.InRange(outbox.GroupCommits, 1, Records / 2);
        }

        using var reopened = Outbox.Open(dir.Path, new OutboxLimits { MaxRecords = int.MaxValue });
        Assert.Equal(Records, reopened.Count);
        Assert.All(reopened.Snapshot(), e => Assert.Equal(BitConverter.GetBytes(e.Sequence), reopened.Read(e)));
    }

    [Fact]
    public async Task Pipeline_records_in_flight_together_share_commits_and_the_chain_and_state_survive_reopening()
    {
        using var dir = new TempDir();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        const int Records = 300;
        using (var outbox = Outbox.Open(dir.Sub("outbox"), new OutboxLimits { MaxRecords = int.MaxValue }))
        using (var pipeline = new AgentPipeline("pi-1", [new CountingThermometer()], key, SequenceState.Open(dir.Path, outbox), outbox, TimeProvider.System))
        {
            var made = await Task.WhenAll(Enumerable.Range(0, Records).Select(_ => pipeline.CaptureAsync()));
            Assert.Equal(Records, outbox.Count);
            Assert.InRange(outbox.GroupCommits, 1, Records - 1);
            Assert.Equal(Enumerable.Range(1, Records).Select(i => (long)i), made.Select(r => r.Record.Sequence).Order());
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
