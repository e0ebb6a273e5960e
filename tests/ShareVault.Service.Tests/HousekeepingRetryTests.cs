using ShareVault.TestSupport;

namespace ShareVault.Service.Tests;

/// <summary>The housekeeping loop's retry (Polly on the host's <see cref="TimeProvider"/>), on virtual time.</summary>
public sealed class HousekeepingRetryTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static readonly ServiceOptions Options = new()
    {
        DataDir = "unused",
        HousekeepingInterval = TimeSpan.FromSeconds(1),
        HousekeepingRetryDelayMax = TimeSpan.FromSeconds(4),
    };

    [Fact]
    public async Task A_failed_round_is_retried_after_waits_that_double_up_to_the_cap_until_it_succeeds()
    {
        var time = new TimerWatchingTime();
        var retries = new List<(int Attempt, TimeSpan Delay)>();
        var pipeline = ClaimsHost.HousekeepingRetry(Options, time, args =>
        {
            retries.Add((args.AttemptNumber, args.RetryDelay));
            return ValueTask.CompletedTask;
        });
        var tries = 0;
        var round = pipeline.ExecuteAsync(_ => ++tries <= 4 ? throw new IOException("database unreachable") : ValueTask.CompletedTask).AsTask();

        foreach (var seconds in new[] { 1, 2, 4, 4 })
        {
            var wait = await time.NextWaitAsync();
            Assert.Equal(TimeSpan.FromSeconds(seconds), wait);
            Assert.False(round.IsCompleted);
            time.Advance(wait);
        }

        await round.WaitAsync(Patience);
        Assert.Equal(5, tries);
        Assert.Equal([1, 2, 4, 4], retries.Select(r => r.Delay.TotalSeconds));
    }

    [Fact]
    public async Task A_stop_ends_the_retry_wait_at_once()
    {
        var time = new TimerWatchingTime();
        var pipeline = ClaimsHost.HousekeepingRetry(Options, time, _ => ValueTask.CompletedTask);
        using var stop = new CancellationTokenSource();
        var tries = 0;
        var round = pipeline.ExecuteAsync(_ => { tries++; throw new IOException("custodians away"); }, stop.Token).AsTask();

        // The first wait is pending on virtual time that never moves: only the stop can end it.
        Assert.Equal(TimeSpan.FromSeconds(1), await time.NextWaitAsync());
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => round.WaitAsync(Patience));
        Assert.Equal(1, tries);
    }

    [Fact]
    public void Housekeeping_options_out_of_range_are_refused_by_name()
    {
        Assert.Equal("HousekeepingInterval", Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { HousekeepingInterval = TimeSpan.Zero }).Validate()).ParamName);
        Assert.Equal("HousekeepingRetryDelayMax", Assert.Throws<ArgumentOutOfRangeException>(() => (Options with { HousekeepingRetryDelayMax = TimeSpan.Zero }).Validate()).ParamName);
    }
}
