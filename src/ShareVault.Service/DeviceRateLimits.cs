using System.Threading.RateLimiting;

namespace ShareVault.Service;

/// <summary>
/// The per-device evidence limit: a <see cref="PartitionedRateLimiter{TResource}"/> with one
/// <see cref="TokenBucketRateLimiter"/> per device id, each holding at most <c>burst</c> permits and
/// refilled at <c>rate</c> permits per second. One timer of the partitioned limiter refills every
/// device's bucket (and drops buckets idle and full), so a fleet of devices costs no timer each.
/// Permits come in whole numbers per replenishment period: a period is the shortest that adds at least
/// one permit and lasts at least <see cref="ShortestPeriod"/>, so the sustained rate is exact.
/// The limiter measures time on the monotonic clock (System.Threading.RateLimiting takes no
/// <see cref="TimeProvider"/>); the rate is about when records arrive, not about the evidence's time.
/// </summary>
internal sealed class DeviceRateLimits : IDisposable
{
    /// <summary>The partitioned limiter refills its buckets every 100 ms; a shorter period would only be rounded up to it.</summary>
    public static readonly TimeSpan ShortestPeriod = TimeSpan.FromMilliseconds(100);

    private readonly PartitionedRateLimiter<string> _limiter;

    public DeviceRateLimits(double ratePerSecond, int burst)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ratePerSecond, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        var perPeriod = (int)Math.Min(burst, Math.Max(1, Math.Ceiling(ratePerSecond * ShortestPeriod.TotalSeconds)));
        Options = new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = perPeriod,
            ReplenishmentPeriod = TimeSpan.FromSeconds(perPeriod / ratePerSecond),
            QueueLimit = 0, // a record over the limit is refused at once (RateLimited), never held
        };
        _limiter = PartitionedRateLimiter.Create<string, string>(device => RateLimitPartition.GetTokenBucketLimiter(device, _ => Options), StringComparer.Ordinal);
    }

    /// <summary>Each device's bucket.</summary>
    public TokenBucketRateLimiterOptions Options { get; }

    /// <summary>Takes one permit for <paramref name="deviceId"/>, or answers false (the record is <c>RateLimited</c>).</summary>
    public bool TryTake(string deviceId)
    {
        using var lease = _limiter.AttemptAcquire(deviceId, 1);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
