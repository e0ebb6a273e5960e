namespace Simulators;

/// <summary>
/// A <see cref="TimeProvider"/> whose time moves only when told to, so scenarios spanning days run in
/// milliseconds. Timers created from it (debounce timers, Task.Delay with this provider) fire in due
/// order, on the advancing thread, with <see cref="GetUtcNow"/> reporting their due time.
/// </summary>
public sealed class ScenarioClock : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ScenarioTimer> _timers = [];
    private DateTimeOffset _now;

    public ScenarioClock(DateTimeOffset start) => _now = start;

    public override DateTimeOffset GetUtcNow()
    {
        lock (_gate)
        {
            return _now;
        }
    }

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new ScenarioTimer(this, callback, state);
        lock (_gate)
        {
            _timers.Add(timer);
        }

        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves time forward by <paramref name="delta"/>, firing due timers on the way.</summary>
    public void Advance(TimeSpan delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delta, TimeSpan.Zero);
        AdvanceTo(GetUtcNow() + delta);
    }

    /// <summary>Moves time forward to <paramref name="target"/>, firing due timers in order on the way.</summary>
    public void AdvanceTo(DateTimeOffset target)
    {
        while (true)
        {
            ScenarioTimer? next = null;
            lock (_gate)
            {
                if (target < _now)
                {
                    throw new ArgumentOutOfRangeException(nameof(target), target, $"The scenario clock is at {_now:O} and cannot go back.");
                }

                foreach (var timer in _timers)
                {
                    if (timer.Due is { } due && due <= target && (next is null || due < next.Due))
                    {
                        next = timer;
                    }
                }

                if (next is null)
                {
                    _now = target;
                    return;
                }

                _now = next.Due!.Value;
                next.Due = next.Period is { } period ? _now + period : null;
            }

            // Outside the lock: the callback may read the clock or change timers.
            next.Fire();
        }
    }

    private void Remove(ScenarioTimer timer)
    {
        lock (_gate)
        {
            _timers.Remove(timer);
        }
    }

    private sealed class ScenarioTimer(ScenarioClock clock, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public TimeSpan? Period { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : clock._now + (dueTime < TimeSpan.Zero ? TimeSpan.Zero : dueTime);
                Period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? null : period;
                return true;
            }
        }

        public void Fire() => callback(state);

        public void Dispose() => clock.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
