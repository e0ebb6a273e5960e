using System.Globalization;
using System.Text.Json.Nodes;

namespace ShareVault.Claims.Rules;

/// <summary>
/// Evaluates one policy's rule over one device's records, fed in sequence order, whatever its
/// <see cref="TriggerKind"/>; the engine, <c>ledger verify</c> and a custody node's guard all run it
/// (through <see cref="Replay.DecisionReplay"/>), so a decision is recomputed with the code that made it.
/// <list type="bullet">
/// <item>Condition: <see cref="ConditionEvaluator"/>.</item>
/// <item>All (<c>A and B</c>): fires on the record after which every part holds, each for its own
/// duration; the claim lists the records of every part's current episode. It fires again only
/// after some part stopped holding.</item>
/// <item>Sequence (<c>A then B within D</c>): fires when B fires at a record time no earlier than,
/// and at most D after, the record time at which A last fired (the same record may complete both:
/// one poll of the accelerometer reports the latched free fall and the shock's peak together);
/// the claim lists A's and B's records. A firing of A older than D is forgotten.</item>
/// <item>Absence (<c>no record for D [during W]</c>): records only move the device's last record;
/// the decision is taken on the clock (<see cref="Tick"/>): at time T, the silence runs from the
/// last record's time (or the window's start, if later) to T (or the window's end, if earlier),
/// and fires once per last record when it lasts at least D and the record also arrived at least D
/// before T (a device delivering a backlog is not silent). The claim lists that last record, and
/// the decision time is the claim's, so <c>ledger verify</c> recomputes it from the record and the
/// ledger entry's time.</item>
/// </list>
/// </summary>
internal sealed class TriggerEvaluator
{
    private readonly TriggerRule _rule;
    private readonly TimeWindow? _window;
    private readonly List<ConditionEvaluator> _parts;
    private bool _fired;

    // Sequence: the last firing of the first condition, while it may still be followed.
    private TriggerFiring? _armed;

    // Absence: the device's last record (sequence, hash, time) and the last record a silence fired after.
    private EvidenceFacts? _lastRecord;
    private long _firedAfter = -1;

    public TriggerEvaluator(TriggerRule rule, RuleContext context)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(context);
        _rule = rule;
        _parts = rule.Kind switch
        {
            TriggerKind.Condition => [new ConditionEvaluator(rule, context)],
            TriggerKind.All or TriggerKind.Sequence => [.. rule.Parts.Select(p => new ConditionEvaluator(p, context))],
            _ => [],
        };
        if (rule.Kind == TriggerKind.Absence && rule.Window is not null)
        {
            _window = context.Windows.TryGetValue(rule.Window, out var window)
                ? window
                : throw new ArgumentException($"The policy names no window '{rule.Window}' for rule '{rule.Text}'", nameof(context));
        }
    }

    private TriggerEvaluator(TriggerEvaluator other)
    {
        _rule = other._rule;
        _window = other._window;
        _parts = [.. other._parts.Select(p => p.Clone())];
        _fired = other._fired;
        _armed = other._armed;
        _lastRecord = other._lastRecord;
        _firedAfter = other._firedAfter;
        LastSequence = other.LastSequence;
    }

    /// <summary>Whether the decision needs the clock (<see cref="Tick"/>) as well as the records.</summary>
    public bool NeedsClock => _rule.Kind == TriggerKind.Absence;

    /// <summary>The highest sequence number fed so far (-1 before the first).</summary>
    public long LastSequence { get; private set; } = -1;

    /// <summary>A copy to feed tentatively (inside a transaction that may roll back).</summary>
    public TriggerEvaluator Clone() => new(this);

    /// <summary>
    /// The state as compact JSON, so another service instance (or this one after a restart)
    /// continues exactly here. A single condition saves exactly what it always did
    /// (<see cref="ConditionEvaluator.SaveState"/>), so stored states and their rows stay as they are.
    /// </summary>
    public string SaveState()
    {
        if (_rule.Kind == TriggerKind.Condition)
        {
            return _parts[0].SaveState();
        }

        var state = new JsonObject();
        if (_parts.Count > 0)
        {
            state["parts"] = new JsonArray([.. _parts.Select(p => (JsonNode)p.SaveJson())]);
        }

        if (_fired)
        {
            state["fired"] = true;
        }

        if (_armed is { } armed)
        {
            state["armed"] = new JsonObject
            {
                ["from"] = Format(armed.From),
                ["until"] = Format(armed.Until),
                ["records"] = Pairs(armed.Records),
            };
        }

        if (_lastRecord is { } last)
        {
            state["last"] = new JsonArray(last.Sequence, Convert.ToHexStringLower(last.Hash), Format(last.Time));
            state["fired_after"] = _firedAfter;
        }

        return state.ToJsonString();
    }

    /// <summary>An evaluator continuing from <see cref="SaveState"/>'s output, after the device's records up to <paramref name="evaluatedSequence"/>.</summary>
    public static TriggerEvaluator Restore(TriggerRule rule, RuleContext context, string deviceId, string state, long evaluatedSequence)
    {
        ArgumentException.ThrowIfNullOrEmpty(state);
        var evaluator = new TriggerEvaluator(rule, context) { LastSequence = evaluatedSequence };
        var json = JsonNode.Parse(state)!.AsObject();
        if (rule.Kind == TriggerKind.Condition)
        {
            evaluator._parts[0] = ConditionEvaluator.Restore(rule, context, deviceId, json, evaluatedSequence);
            return evaluator;
        }

        if (json["parts"] is JsonArray parts)
        {
            for (var i = 0; i < evaluator._parts.Count; i++)
            {
                evaluator._parts[i] = ConditionEvaluator.Restore(rule.Parts[i], context, deviceId, parts[i]!.AsObject(), evaluatedSequence);
            }
        }

        evaluator._fired = json["fired"]?.GetValue<bool>() ?? false;
        if (json["armed"] is JsonObject armed)
        {
            evaluator._armed = new TriggerFiring(Parse(armed["from"]!), Parse(armed["until"]!), Records(deviceId, armed["records"]!.AsArray()));
        }

        if (json["last"] is JsonArray last)
        {
            evaluator._lastRecord = new EvidenceFacts(deviceId, last[0]!.GetValue<long>(), Parse(last[2]!), Convert.FromHexString(last[1]!.GetValue<string>()), []);
            evaluator._firedAfter = json["fired_after"]!.GetValue<long>();
        }

        return evaluator;
    }

    /// <summary>Feeds the next record (sequence order); returns a firing when this record completes the rule.</summary>
    public TriggerFiring? Feed(EvidenceFacts record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Sequence <= LastSequence)
        {
            throw new ArgumentException($"Records must be fed in increasing sequence order ({record.Sequence} after {LastSequence})", nameof(record));
        }

        LastSequence = record.Sequence;
        switch (_rule.Kind)
        {
            case TriggerKind.Condition:
                return _parts[0].Feed(record);
            case TriggerKind.All:
                foreach (var part in _parts)
                {
                    part.Feed(record);
                }

                if (!_parts.All(p => p.Satisfied))
                {
                    _fired = false;
                    return null;
                }

                if (_fired)
                {
                    return null;
                }

                _fired = true;
                return new TriggerFiring(_parts.Min(p => p.EpisodeStart), record.Time, Union(_parts.SelectMany(p => p.Episode)));
            case TriggerKind.Sequence:
                if (_armed is { } stale && record.Time - stale.Until > _rule.Within)
                {
                    _armed = null; // too late for anything from now on: record times only move forward (within the allowed step back)
                }

                if (_parts[0].Feed(record) is { } first)
                {
                    _armed = first;
                }

                if (_parts[1].Feed(record) is { } second && _armed is { } armedFirst
                    && second.Until >= armedFirst.Until && second.Until - armedFirst.Until <= _rule.Within)
                {
                    _armed = null;
                    return new TriggerFiring(armedFirst.From, second.Until, Union(armedFirst.Records.Concat(second.Records)));
                }

                return null;
            default:
                // Absence: a record only moves the last record (the newest by sequence, as a replay from it sees it).
                _lastRecord = record;
                return null;
        }
    }

    /// <summary>
    /// The clock's part of the decision, at <paramref name="now"/>, after every stored record was fed:
    /// for an absence, the silence since the last record; nothing for the other kinds.
    /// </summary>
    /// <param name="now">The decision time.</param>
    /// <param name="lastArrival">When the service received the last record, when known: nothing may have arrived
    /// for the rule's duration either, so a device delivering a backlog of old records is not silent.</param>
    public TriggerFiring? Tick(DateTimeOffset now, DateTimeOffset? lastArrival = null)
    {
        if (_rule.Kind != TriggerKind.Absence || _lastRecord is not { } last || _firedAfter >= last.Sequence
            || (lastArrival is { } arrived && now - arrived < _rule.Duration))
        {
            return null;
        }

        var from = _window is null || last.Time > _window.Start ? last.Time : _window.Start;
        var until = _window is null || now < _window.End ? now : _window.End;
        if (until - from < _rule.Duration)
        {
            return null;
        }

        _firedAfter = last.Sequence;
        return new TriggerFiring(from, until, [last]);
    }

    /// <summary>Runs a whole sequence (already in order) and returns every firing: what a verifier recomputes.</summary>
    public static IReadOnlyList<TriggerFiring> Evaluate(TriggerRule rule, RuleContext context, IEnumerable<EvidenceFacts> records, DateTimeOffset? decidedAt = null, DateTimeOffset? lastArrival = null)
    {
        var evaluator = new TriggerEvaluator(rule, context);
        var firings = new List<TriggerFiring>();
        foreach (var record in records)
        {
            if (evaluator.Feed(record) is { } firing)
            {
                firings.Add(firing);
            }
        }

        if (decidedAt is { } now && evaluator.Tick(now, lastArrival) is { } silence)
        {
            firings.Add(silence);
        }

        return firings;
    }

    private static IReadOnlyList<EvidenceFacts> Union(IEnumerable<EvidenceFacts> records) =>
        [.. records.GroupBy(r => r.Sequence).Select(g => g.First()).OrderBy(r => r.Sequence)];

    private static JsonArray Pairs(IEnumerable<EvidenceFacts> records) =>
        new([.. records.Select(r => (JsonNode)new JsonArray(r.Sequence, Convert.ToHexStringLower(r.Hash)))]);

    private static List<EvidenceFacts> Records(string deviceId, JsonArray pairs) =>
        [.. pairs.Select(p => new EvidenceFacts(deviceId, p![0]!.GetValue<long>(), default, Convert.FromHexString(p[1]!.GetValue<string>()), []))];

    private static string Format(DateTimeOffset time) => time.ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset Parse(JsonNode node) => DateTimeOffset.Parse(node.GetValue<string>(), CultureInfo.InvariantCulture);
}
