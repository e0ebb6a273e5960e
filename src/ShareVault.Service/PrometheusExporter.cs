using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace ShareVault.Service;

/// <summary>
/// Sums the measurements of the given counters with a <see cref="MeterListener"/> and writes them in
/// the Prometheus text exposition format 0.0.4 (the OpenMetrics naming: dots become underscores and
/// a counter gets <c>_total</c>). A counter is either unlabelled (always written, 0 until measured)
/// or labelled by one tag (one sample per value seen, in ordinal order). No package beyond the BCL:
/// the OpenTelemetry exporters do not restore here, and these counters need nothing more.
/// </summary>
internal sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<Series> _series;

    /// <param name="instruments">The counters to export, in the order they are written; each with the one tag that labels it, or null.</param>
    public PrometheusExporter(IReadOnlyList<(Instrument Instrument, string? Label)> instruments)
    {
        ArgumentNullException.ThrowIfNull(instruments);
        _series = [.. instruments.Select(i => new Series(i.Instrument, i.Label))];
        var byInstrument = _series.ToDictionary(s => s.Instrument);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (byInstrument.TryGetValue(instrument, out var series))
            {
                listener.EnableMeasurementEvents(instrument, series);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((Series)state!).Add(value, tags));
        _listener.Start();
    }

    /// <summary>The unlabelled total of <paramref name="instrument"/> (observable counters are read now).</summary>
    public long Total(Instrument instrument)
    {
        var series = Find(instrument);
        if (series.Instrument.IsObservable)
        {
            _listener.RecordObservableInstruments();
        }

        return series.Total;
    }

    /// <summary>The totals of a labelled counter, by label value.</summary>
    public IReadOnlyDictionary<string, long> ByLabel(Instrument instrument) => Find(instrument).Labelled;

    public string Write()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var series in _series)
        {
            var name = series.Instrument.Name.Replace('.', '_') + "_total";
            text.Append("# TYPE ").Append(name).Append(" counter\n");
            if (series.Label is null)
            {
                text.Append(name).Append(' ').Append(series.Total.ToString(CultureInfo.InvariantCulture)).Append('\n');
                continue;
            }

            foreach (var (value, count) in series.Labelled.OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                text.Append(CultureInfo.InvariantCulture, $"{name}{{{series.Label}=\"{Escape(value)}\"}} {count}\n");
            }
        }

        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    /// <summary>Label values escape backslash, double quote and line feed (exposition format, "Comments, help text, and type information").</summary>
    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private Series Find(Instrument instrument) =>
        _series.Find(s => s.Instrument == instrument) ?? throw new ArgumentException($"'{instrument.Name}' is not exported here", nameof(instrument));

    private sealed class Series(Instrument instrument, string? label)
    {
        private readonly ConcurrentDictionary<string, long> _labelled = new(StringComparer.Ordinal);
        private long _total;

        public Instrument Instrument { get; } = instrument;

        public string? Label { get; } = label;

        public long Total => Interlocked.Read(ref _total);

        public IReadOnlyDictionary<string, long> Labelled => _labelled;

        public void Add(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (Instrument.IsObservable)
            {
                // An observable counter reports its running total, not an increment.
                Interlocked.Exchange(ref _total, value);
                return;
            }

            Interlocked.Add(ref _total, value);
            if (Label is null)
            {
                return;
            }

            var labelValue = string.Empty;
            foreach (var tag in tags)
            {
                if (tag.Key == Label)
                {
                    labelValue = Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? string.Empty;
                }
            }

            _labelled.AddOrUpdate(labelValue, value, (_, n) => n + value);
        }
    }
}
