using System.Threading.RateLimiting;

namespace ShareVault.Service;

/// <summary>
/// One device's token bucket: at most <c>burst</c> permits, refilled continuously at <c>rate</c>
/// permits per second, computed from the elapsed time whenever a permit is asked for (no timer).
/// <para>
/// Why not the BCL's <see cref="TokenBucketRateLimiter"/>: inside a partitioned limiter it is refilled
/// by a 100 ms heartbeat that adds "rate × time since the last refill", and a refill of a full bucket
/// returns without moving that time on. A bucket that sat full and is then drained gets, on the next
/// heartbeat, everything "earned" while it was full, capped at the burst: a second burst within
/// 100 ms. A device could send 2 × burst after every pause (seen as 5 permits from a bucket of 3 in a
/// clean-clone run). Here time spent full earns nothing.
/// </para>
/// </summary>
internal sealed class DeviceTokenBucket : RateLimiter
{
    private readonly double _ratePerSecond;
    private readonly int _burst;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private double _tokens;
    private long _at;

    public DeviceTokenBucket(double ratePerSecond, int burst, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ratePerSecond, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _ratePerSecond = ratePerSecond;
        _burst = burst;
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _tokens = burst;
        _at = time.GetTimestamp();
    }

    /// <summary>How long the bucket has been full (the partitioned limiter drops buckets idle for a while), or null.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                var now = _time.GetTimestamp();
                var sinceFull = _time.GetElapsedTime(_at, now).TotalSeconds - ((_burst - _tokens) / _ratePerSecond);
                return sinceFull >= 0 ? TimeSpan.FromSeconds(sinceFull) : null;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            return new RateLimiterStatistics { CurrentAvailablePermits = (long)RefillLocked() };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(permitCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(permitCount, _burst);
        lock (_gate)
        {
            if (RefillLocked() < permitCount)
            {
                return Lease.Refused;
            }

            _tokens -= permitCount;
            return Lease.Granted;
        }
    }

    /// <summary>Records over the limit are refused at once, never queued: waiting is the same as trying now.</summary>
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(AttemptAcquireCore(permitCount));
    }

    private double RefillLocked()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + (_time.GetElapsedTime(_at, now).TotalSeconds * _ratePerSecond));
        _at = now;
        return _tokens;
    }

    private sealed class Lease(bool acquired) : RateLimitLease
    {
        public static readonly Lease Granted = new(true);
        public static readonly Lease Refused = new(false);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
