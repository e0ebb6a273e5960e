using System.Threading.RateLimiting;

namespace ShareVault.Service;

/// <summary>
/// The per-device evidence limit: a <see cref="PartitionedRateLimiter{TResource}"/> with one
/// <see cref="DeviceTokenBucket"/> per device id, each holding at most <c>burst</c> permits and
/// refilled at <c>rate</c> permits per second. The partitioned limiter keeps the buckets of active
/// devices and drops those that have sat full for a while, so a fleet costs one entry per active
/// device and no timer each. Time comes from the monotonic clock of <see cref="TimeProvider"/>
/// (<see cref="TimeProvider.System"/> in the service): the rate is about when records arrive, not
/// about the evidence's own time.
/// </summary>
internal sealed class DeviceRateLimits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;

    public DeviceRateLimits(double ratePerSecond, int burst, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ratePerSecond, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        var clock = time ?? TimeProvider.System;
        _limiter = PartitionedRateLimiter.Create<string, string>(
            device => RateLimitPartition.Get(device, _ => new DeviceTokenBucket(ratePerSecond, burst, clock)),
            StringComparer.Ordinal);
    }

    /// <summary>Takes one permit for <paramref name="deviceId"/>, or answers false (the record is <c>RateLimited</c>).</summary>
    public bool TryTake(string deviceId)
    {
        using var lease = _limiter.AttemptAcquire(deviceId, 1);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
