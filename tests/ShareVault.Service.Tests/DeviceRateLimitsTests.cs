using Microsoft.Extensions.Time.Testing;

namespace ShareVault.Service.Tests;

/// <summary>The per-device limit: one token bucket per device, at the configured rate and burst, on the clock it is given.</summary>
public sealed class DeviceRateLimitsTests
{
    [Fact]
    public void Each_device_gets_its_own_burst_and_a_drained_bucket_refills_at_the_rate_up_to_the_burst()
    {
        var time = new FakeTimeProvider();
        using var limits = new DeviceRateLimits(2, 3, time);
        Assert.Equal(3, Takes(limits, "pi-1", 10));
        Assert.Equal(3, Takes(limits, "pi-2", 10)); // another device is not held by the first

        time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.Equal(0, Takes(limits, "pi-1", 10));
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, Takes(limits, "pi-1", 10));

        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(3, Takes(limits, "pi-1", 10));
    }

    /// <summary>
    /// The BCL's partitioned token bucket gave a bucket that had sat full a second burst on the next
    /// 100 ms heartbeat after it was drained (5 permits from a bucket of 3, in a clean-clone run).
    /// Time spent full must earn nothing.
    /// </summary>
    [Fact]
    public void A_bucket_that_sat_full_gives_one_burst_and_then_only_the_rate()
    {
        var time = new FakeTimeProvider();
        using var limits = new DeviceRateLimits(2, 3, time);
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(3, Takes(limits, "pi-1", 10));
        for (var step = 0; step < 4; step++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.Equal(0, Takes(limits, "pi-1", 10));
        }

        time.Advance(TimeSpan.FromMilliseconds(100)); // 500 ms since the drain: one permit at 2/s
        Assert.Equal(1, Takes(limits, "pi-1", 10));
    }

    [Theory]
    [InlineData(200, 2000)] // the default
    [InlineData(1, 3)]
    [InlineData(0.5, 1)]
    [InlineData(15, 100)]
    public void A_drained_bucket_gives_exactly_rate_times_elapsed_permits(double rate, int burst)
    {
        var time = new FakeTimeProvider();
        using var limits = new DeviceRateLimits(rate, burst, time);
        Assert.Equal(burst, Takes(limits, "pi-1", burst + 5));

        // Ten steps of 1/rate seconds each earn exactly one permit each (capped at the burst); a step
        // is rounded up to whole ticks, since 1/15 s truncated would earn 0.999999 of a permit.
        var step = TimeSpan.FromTicks((long)Math.Ceiling(TimeSpan.TicksPerSecond / rate));
        var earned = 0;
        for (var i = 0; i < 10; i++)
        {
            time.Advance(step);
            earned += Takes(limits, "pi-1", 3);
        }

        Assert.Equal(Math.Min(10, burst * 10), earned);
    }

    [Fact]
    public void Out_of_range_limits_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceRateLimits(0, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceRateLimits(10, 0));
        Assert.Throws<ArgumentOutOfRangeException>(new IngestOptions { Burst = 0.5 }.Validate);
        Assert.Throws<ArgumentOutOfRangeException>(new IngestOptions { RatePerSecond = double.NaN }.Validate);
    }

    private static int Takes(DeviceRateLimits limits, string device, int tries) => Enumerable.Range(0, tries).Count(_ => limits.TryTake(device));
}
