using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;

namespace DeviceAgent.Tests.Storage;

public sealed class SequenceStateTests
{
    [Fact]
    public void Sequence_numbers_increase_and_survive_a_restart()
    {
        using var dir = new TempDir();
        var state = SequenceState.Open(dir.Path);
        Assert.Equal(1, state.Reserve());
        Assert.Equal(2, state.Reserve());
        state.Commit(2, new byte[32]);

        var reopened = SequenceState.Open(dir.Path);
        Assert.Equal(3, reopened.Reserve());
        Assert.Equal(2, reopened.LastSequence);
        Assert.Equal(new byte[32], reopened.PreviousHash.ToArray());
    }

    [Fact]
    public void Number_reserved_before_a_power_cut_is_never_reused()
    {
        using var dir = new TempDir();
        var state = SequenceState.Open(dir.Path);
        var used = state.Reserve();
        // "Power cut": the record carrying `used` was never committed; the process just ends.

        var reopened = SequenceState.Open(dir.Path);
        Assert.True(reopened.Reserve() > used);
    }

    [Fact]
    public void Chain_continues_from_a_record_enqueued_but_not_committed_before_a_crash()
    {
        using var dir = new TempDir();
        using var outbox = Outbox.Open(dir.Sub("outbox"));
        var state = SequenceState.Open(dir.Path, outbox);
        var seq = state.Reserve();
        var entry = outbox.Add(seq, [1, 2, 3]);
        // crash before state.Commit

        var reopened = SequenceState.Open(dir.Path, outbox);
        Assert.Equal(seq, reopened.LastSequence);
        Assert.Equal(entry.Hash, Convert.ToHexStringLower(reopened.PreviousHash.Span));
    }

    [Fact]
    public void A_corrupt_state_file_is_refused_rather_than_guessed()
    {
        using var dir = new TempDir();
        SequenceState.Open(dir.Path).Reserve();
        File.WriteAllText(Path.Combine(dir.Path, "state.json"), "{\"next\":3,\"last\":5,\"prev\":\"\"}");
        Assert.Throws<InvalidDataException>(() => SequenceState.Open(dir.Path));
    }

    [Fact]
    public void Commit_out_of_order_is_refused()
    {
        using var dir = new TempDir();
        var state = SequenceState.Open(dir.Path);
        state.Reserve();
        Assert.Throws<InvalidOperationException>(() => state.Commit(5, new byte[32]));
    }
}
