namespace ShareVault.Service.Tests;

/// <summary>The per-device limit is System.Threading.RateLimiting's token bucket, one per device, at the configured rate and burst.</summary>
public sealed class DeviceRateLimitsTests
{
    [Fact]
    public void Each_device_gets_its_own_burst_and_a_drained_bucket_refills_at_the_rate_up_to_the_burst()
    {
        using var limits = new DeviceRateLimits(2, 3);
        Assert.Equal(3, Takes(limits, "pi-1", 10));
        Assert.Equal(3, Takes(limits, "pi-2", 10)); // another device is not held by the first

        // 2/s, one permit every 500 ms on a shared timer: 3 s is six refills' worth, so pi-1 has its
        // three back even if a loaded machine fires the timer late, and never more than the burst.
        // (1.8 s, three refills with 300 ms to spare, failed once on a loaded clean-clone run.)
        Thread.Sleep(3000);
        Assert.Equal(3, Takes(limits, "pi-1", 10));
    }

    [Theory]
    [InlineData(200, 2000, 20, 100)] // the default: 20 permits every 100 ms
    [InlineData(1, 3, 1, 1000)]
    [InlineData(0.5, 1, 1, 2000)]
    [InlineData(15, 100, 2, 133)] // 2 per 133 ms is 15/s, not 20/s
    public void The_bucket_refills_at_exactly_the_configured_rate(double rate, int burst, int perPeriod, int periodMs)
    {
        using var limits = new DeviceRateLimits(rate, burst);
        Assert.Equal(burst, limits.Options.TokenLimit);
        Assert.Equal(perPeriod, limits.Options.TokensPerPeriod);
        Assert.Equal(periodMs, (int)limits.Options.ReplenishmentPeriod.TotalMilliseconds);
        Assert.Equal(0, limits.Options.QueueLimit);
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
