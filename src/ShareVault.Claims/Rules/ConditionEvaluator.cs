using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Evidence;

namespace ShareVault.Claims.Rules;

/// <summary>
/// One verified evidence record as the evaluator sees it: who, which sequence number, when it was
/// made (its record time, what durations are measured with), its hash and readings.
/// </summary>
public sealed record EvidenceFacts(string DeviceId, long Sequence, DateTimeOffset Time, byte[] Hash, IReadOnlyList<Reading> Readings);

/// <summary>A place (WGS 84 degrees) that <c>distance_from(NAME)</c> measures from.</summary>
public sealed record Place(double Latitude, double Longitude);

/// <summary>A named time window that <c>during NAME</c> restricts a rule to, [Start, End).</summary>
public sealed record TimeWindow(DateTimeOffset Start, DateTimeOffset End);

/// <summary>Named places and windows a policy defines for its rule.</summary>
public sealed record RuleContext(IReadOnlyDictionary<string, Place> Places, IReadOnlyDictionary<string, TimeWindow> Windows)
{
    public static readonly RuleContext Empty = new(new Dictionary<string, Place>(), new Dictionary<string, TimeWindow>());
}

/// <summary>The trigger fired: the records whose readings held the condition continuously for the rule's duration.</summary>
internal sealed record TriggerFiring(DateTimeOffset From, DateTimeOffset Until, IReadOnlyList<EvidenceFacts> Records);

/// <summary>
/// Evaluates one condition (<see cref="TriggerKind.Condition"/>) over one device's records, fed in
/// sequence order, one record at a time; <see cref="TriggerEvaluator"/> combines them.
/// An episode starts with the first matching reading and ends with the first reading of the same
/// quantity that does not match (or lies outside the window, or whose record goes back in time); it
/// fires once, when the records holding its matching readings span at least the rule's duration.
/// Durations are measured between record times, never between the readings of one record: a record
/// speaks for the moment it was made (its readings lie within a minute of it,
/// <see cref="EvidenceLimits.MaxReadingAge"/>), so one record alone can only meet a rule without a
/// duration. Records without the quantity are neutral. Decisions are a pure function of the record
/// sequence, so anyone can recompute them.
/// </summary>
internal sealed class ConditionEvaluator
{
    private readonly TriggerRule _rule;
    private readonly Place? _place;
    private readonly TimeWindow? _window;
    private readonly List<EvidenceFacts> _episode = [];
    private DateTimeOffset _start;
    private DateTimeOffset _last;
    private bool _active;
    private bool _fired;

    public ConditionEvaluator(TriggerRule rule, RuleContext context)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(context);
        _rule = rule;
        if (rule.Place is not null)
        {
            _place = context.Places.TryGetValue(rule.Place, out var place)
                ? place
                : throw new ArgumentException($"The policy names no place '{rule.Place}' for rule '{rule.Text}'", nameof(context));
        }

        if (rule.Window is not null)
        {
            _window = context.Windows.TryGetValue(rule.Window, out var window)
                ? window
                : throw new ArgumentException($"The policy names no window '{rule.Window}' for rule '{rule.Text}'", nameof(context));
        }
    }

    private ConditionEvaluator(ConditionEvaluator other)
    {
        _rule = other._rule;
        _place = other._place;
        _window = other._window;
        _episode.AddRange(other._episode);
        _start = other._start;
        _last = other._last;
        _active = other._active;
        _fired = other._fired;
        LastSequence = other.LastSequence;
    }

    /// <summary>A copy to feed tentatively (inside a transaction that may roll back).</summary>
    public ConditionEvaluator Clone() => new(this);

    /// <summary>
    /// The evaluator's state as compact JSON, so another service instance (or this one after a
    /// restart) continues exactly here without replaying the device's evidence. The open episode
    /// keeps each record's sequence number and hash (what a claim lists), not its readings. Between
    /// episodes the state is <c>{}</c>, so a quiet device's state does not change record by record
    /// (and is not rewritten with every batch).
    /// </summary>
    public string SaveState() => SaveJson().ToJsonString();

    /// <summary>The state of <see cref="SaveState"/> as a JSON object (a part of a combined rule's state).</summary>
    public JsonObject SaveJson()
    {
        var state = new JsonObject();
        if (_active)
        {
            state["start"] = _start.ToString("O", CultureInfo.InvariantCulture);
            state["last"] = _last.ToString("O", CultureInfo.InvariantCulture);
            state["fired"] = _fired;
            state["episode"] = new JsonArray([.. _episode.Select(r => (JsonNode)new JsonArray(r.Sequence, Convert.ToHexStringLower(r.Hash)))]);
        }

        return state;
    }

    /// <summary>
    /// An evaluator continuing from <see cref="SaveState"/>'s output, after the device's records up
    /// to <paramref name="evaluatedSequence"/> (only later ones may be fed).
    /// </summary>
    public static ConditionEvaluator Restore(TriggerRule rule, RuleContext context, string deviceId, string state, long evaluatedSequence)
    {
        ArgumentException.ThrowIfNullOrEmpty(state);
        return Restore(rule, context, deviceId, JsonNode.Parse(state)!.AsObject(), evaluatedSequence);
    }

    /// <summary>An evaluator continuing from <see cref="SaveJson"/>'s output.</summary>
    public static ConditionEvaluator Restore(TriggerRule rule, RuleContext context, string deviceId, JsonObject json, long evaluatedSequence)
    {
        var evaluator = new ConditionEvaluator(rule, context);
        evaluator.LastSequence = evaluatedSequence;
        if (json["start"] is { } start)
        {
            evaluator._active = true;
            evaluator._start = DateTimeOffset.Parse(start.GetValue<string>(), CultureInfo.InvariantCulture);
            evaluator._last = DateTimeOffset.Parse(json["last"]!.GetValue<string>(), CultureInfo.InvariantCulture);
            evaluator._fired = json["fired"]!.GetValue<bool>();
            foreach (var item in json["episode"]!.AsArray())
            {
                var pair = item!.AsArray();
                evaluator._episode.Add(new EvidenceFacts(deviceId, pair[0]!.GetValue<long>(), default, Convert.FromHexString(pair[1]!.GetValue<string>()), [])); // what a claim lists: sequence and hash
            }
        }

        return evaluator;
    }

    /// <summary>The highest sequence number fed so far (-1 before the first).</summary>
    public long LastSequence { get; private set; } = -1;

    /// <summary>The condition holds now and has held for the rule's duration (what <c>and</c> needs of each part).</summary>
    public bool Satisfied => _active && _last - _start >= _rule.Duration;

    /// <summary>When the current episode started (meaningful while <see cref="Satisfied"/>).</summary>
    public DateTimeOffset EpisodeStart => _start;

    /// <summary>The records of the current episode (sequence and hash at least).</summary>
    public IReadOnlyList<EvidenceFacts> Episode => _episode;

    /// <summary>Feeds the next record (sequence order); returns a firing when this record completes an episode.</summary>
    public TriggerFiring? Feed(EvidenceFacts record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Sequence <= LastSequence)
        {
            throw new ArgumentException($"Records must be fed in increasing sequence order ({record.Sequence} after {LastSequence})", nameof(record));
        }

        LastSequence = record.Sequence;
        TriggerFiring? firing = null;
        foreach (var (time, value) in Values(record).OrderBy(v => v.Time))
        {
            var matches = value is { } v && _rule.Matches(v)
                && (_window is null || (time >= _window.Start && time < _window.End))
                && (!_active || record.Time >= _last);
            if (!matches)
            {
                _active = false;
                _fired = false;
                _episode.Clear();
                continue;
            }

            if (!_active)
            {
                _active = true;
                _start = record.Time;
            }

            _last = record.Time;
            if (_episode.Count == 0 || _episode[^1].Sequence != record.Sequence)
            {
                _episode.Add(record);
            }

            if (!_fired && _last - _start >= _rule.Duration)
            {
                _fired = true;
                firing = new TriggerFiring(_start, _last, [.. _episode]);
            }
        }

        return firing;
    }

    /// <summary>Runs a whole sequence (already in order) and returns every firing: what a verifier recomputes.</summary>
    public static IReadOnlyList<TriggerFiring> Evaluate(TriggerRule rule, RuleContext context, IEnumerable<EvidenceFacts> records)
    {
        var evaluator = new ConditionEvaluator(rule, context);
        var firings = new List<TriggerFiring>();
        foreach (var record in records)
        {
            if (evaluator.Feed(record) is { } firing)
            {
                firings.Add(firing);
            }
        }

        return firings;
    }

    /// <summary>The record's values of the rule's quantity, each with its time; a null value always fails to match.</summary>
    private IEnumerable<(DateTimeOffset Time, double? Value)> Values(EvidenceFacts record)
    {
        if (_place is null)
        {
            foreach (var reading in record.Readings)
            {
                if (reading.Name == _rule.Quantity)
                {
                    yield return (reading.Time, double.IsFinite(reading.Value) ? reading.Value : null);
                }
            }

            yield break;
        }

        // distance_from needs a latitude and a longitude taken at the same instant.
        foreach (var latitude in record.Readings.Where(r => r.Name == "latitude"))
        {
            var longitude = record.Readings.FirstOrDefault(r => r.Name == "longitude" && r.Time == latitude.Time);
            if (longitude is not null)
            {
                yield return (latitude.Time, Geo.IsValid(latitude.Value, longitude.Value)
                    ? Geo.DistanceMetres(_place.Latitude, _place.Longitude, latitude.Value, longitude.Value)
                    : null);
            }
        }
    }
}

/// <summary>Great-circle distance on a sphere of the IUGG mean Earth radius (haversine formula).</summary>
internal static class Geo
{
    public const double MeanEarthRadiusMetres = 6_371_008.8;

    public static bool IsValid(double latitude, double longitude) =>
        double.IsFinite(latitude) && double.IsFinite(longitude) && Math.Abs(latitude) <= 90 && Math.Abs(longitude) <= 180;

    public static double DistanceMetres(double lat1, double lon1, double lat2, double lon2)
    {
        static double Rad(double d) => d * Math.PI / 180;
        var dLat = Rad(lat2 - lat1);
        var dLon = Rad(lon2 - lon1);
        var a = (Math.Sin(dLat / 2) * Math.Sin(dLat / 2)) + (Math.Cos(Rad(lat1)) * Math.Cos(Rad(lat2)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2));
        return 2 * MeanEarthRadiusMetres * Math.Asin(Math.Min(1, Math.Sqrt(a)));
    }
}
