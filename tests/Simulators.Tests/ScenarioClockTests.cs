namespace Simulators.Tests;

public sealed class ScenarioClockTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Timers_fire_in_due_order_seeing_their_due_time()
    {
        var clock = new ScenarioClock(Start);
        var fired = new List<(string Name, DateTimeOffset At)>();
        using var late = clock.CreateTimer(_ => fired.Add(("late", clock.GetUtcNow())), null, TimeSpan.FromHours(2), Timeout.InfiniteTimeSpan);
        using var early = clock.CreateTimer(_ => fired.Add(("early", clock.GetUtcNow())), null, TimeSpan.FromMinutes(5), Timeout.InfiniteTimeSpan);

        clock.Advance(TimeSpan.FromDays(1));

        Assert.Equal(new[] { ("early", Start.AddMinutes(5)), ("late", Start.AddHours(2)) }, fired);
        Assert.Equal(Start.AddDays(1), clock.GetUtcNow());
    }

    [Fact]
    public void Periodic_timer_fires_once_per_period()
    {
        var clock = new ScenarioClock(Start);
        var count = 0;
        using var timer = clock.CreateTimer(_ => count++, null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        clock.Advance(TimeSpan.FromMinutes(10.5));
        Assert.Equal(10, count);
    }

    [Fact]
    public void Changed_or_disposed_timers_do_not_fire_early()
    {
        var clock = new ScenarioClock(Start);
        var count = 0;
        var timer = clock.CreateTimer(_ => count++, null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        clock.Advance(TimeSpan.FromMilliseconds(900));
        timer.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        clock.Advance(TimeSpan.FromMilliseconds(900));
        Assert.Equal(0, count);
        timer.Dispose();
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, count);
    }

    [Fact]
    public async Task Task_Delay_completes_on_virtual_time()
    {
        var clock = new ScenarioClock(Start);
        var delay = Task.Delay(TimeSpan.FromHours(1), clock);
        Assert.False(delay.IsCompleted);
        clock.Advance(TimeSpan.FromHours(1));
        await delay.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Time_cannot_go_back()
    {
        var clock = new ScenarioClock(Start);
        Assert.Throws<ArgumentOutOfRangeException>(() => clock.AdvanceTo(Start.AddTicks(-1)));
    }
}
