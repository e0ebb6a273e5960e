using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace ShareVault.TestSupport;

/// <summary>
/// Virtual time that reports each timer created on it as it is created (a Polly retry's wait, for
/// one), so a test reads the waits and moves time only once the timer exists to be fired.
/// </summary>
public sealed class TimerWatchingTime : FakeTimeProvider
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly Channel<TimeSpan> _waits = Channel.CreateUnbounded<TimeSpan>();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        _waits.Writer.TryWrite(dueTime);
        return timer;
    }

    /// <summary>The due time of the next timer created (waiting for it at most 20 s of real time).</summary>
    public async Task<TimeSpan> NextWaitAsync() => await _waits.Reader.ReadAsync().AsTask().WaitAsync(Patience).ConfigureAwait(false);
}
