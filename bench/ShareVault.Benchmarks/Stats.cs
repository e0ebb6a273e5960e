using System.Diagnostics;

namespace ShareVault.Benchmarks;

/// <summary>Medians and percentiles of repeated measurements.</summary>
internal static class Stats
{
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        var rank = p / 100.0 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = (int)Math.Ceiling(rank);
        return sorted[lo] + ((sorted[hi] - sorted[lo]) * (rank - lo));
    }

    public static double Median(IReadOnlyList<double> values) => Percentile(values, 50);

    /// <summary>Runs <paramref name="action"/> <paramref name="count"/> times; returns each latency in milliseconds.</summary>
    public static async Task<List<double>> LatenciesAsync(int count, Func<Task> action)
    {
        var result = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await action();
            result.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return result;
    }

    /// <summary>Operations per second of <paramref name="action"/> run for about <paramref name="duration"/>.</summary>
    public static double Rate(TimeSpan duration, Action action)
    {
        var start = Stopwatch.GetTimestamp();
        var count = 0;
        while (Stopwatch.GetElapsedTime(start) < duration)
        {
            action();
            count++;
        }

        return count / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}
