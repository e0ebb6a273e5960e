using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ShareVault.Claims.Rules;

/// <summary>Comparison in a trigger rule.</summary>
public enum Comparison
{
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// <summary>What a trigger rule is made of (docs/claims-service.md, "Trigger rules").</summary>
public enum TriggerKind
{
    /// <summary>One condition on a reading: <c>OPERAND OP NUMBER [UNIT] [for DURATION] [during WINDOW]</c>.</summary>
    Condition,

    /// <summary>Conditions joined by <c>and</c>: fires when every one holds (each for its own duration) at once.</summary>
    All,

    /// <summary><c>CONDITION then CONDITION within DURATION</c>: the second fires no later than the duration after the first.</summary>
    Sequence,

    /// <summary><c>no record for DURATION [during WINDOW]</c>: the device has been silent that long, decided on the clock.</summary>
    Absence,
}

/// <summary>
/// A declared trigger: a condition <c>OPERAND OP NUMBER [UNIT] [for DURATION] [during WINDOW]</c>, e.g.
/// <c>water_leak == 1 for 10m</c>, <c>temperature &lt; 0 °C for 2h</c>, <c>shock &gt; 8 g</c>,
/// <c>distance_from(home) &lt; 1 km for 48h during trip</c>. The operand is a reading name
/// (<see cref="ShareVault.Evidence.Reading"/>) or <c>distance_from(PLACE)</c>, the great-circle distance from a
/// place the policy names to the record's latitude/longitude. Thresholds are converted once to the
/// reading's SenML unit (RFC 8428 §12.1), so <c>8 g</c> is compared as 78.4532 m/s2.
/// The canonical text (<see cref="Text"/>) is what the policy stores and hashes.
/// Rules for travel combine conditions (<see cref="TriggerKind"/>): <c>A and B</c>, <c>A then B within 1s</c>
/// (e.g. <c>free_fall == 1 then shock &gt; 8 g within 1s</c>) and <c>no record for 48h during trip</c>.
/// A single condition's canonical text is what it always was, so existing policies keep their hashes.
/// </summary>
public sealed class TriggerRule
{
    /// <summary>Words that join or introduce rule parts; never a reading, place or window name.</summary>
    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal) { "and", "then", "within", "no", "record", "for", "during" };

    /// <summary>Standard gravity (CGPM 1901; ISO 80000-3), for rules written in g.</summary>
    public const double StandardGravity = 9.80665;

    private TriggerRule(string quantity, string? place, Comparison comparison, double threshold, string? unit, double thresholdInBaseUnit, TimeSpan duration, string? window)
    {
        Quantity = quantity;
        Place = place;
        Comparison = comparison;
        Threshold = threshold;
        Unit = unit;
        ThresholdInBaseUnit = thresholdInBaseUnit;
        Duration = duration;
        Window = window;
        Parts = [];
        Text = Canonical();
        Hash = SHA256.HashData(Encoding.UTF8.GetBytes(Text));
    }

    private TriggerRule(TriggerKind kind, IReadOnlyList<TriggerRule> parts, TimeSpan duration, TimeSpan within, string? window)
    {
        Kind = kind;
        Parts = parts;
        Quantity = kind == TriggerKind.Absence ? "record" : string.Empty;
        Duration = duration;
        Within = within;
        Window = window;
        Text = kind switch
        {
            TriggerKind.All => string.Join(" and ", parts.Select(p => p.Text)),
            TriggerKind.Sequence => $"{parts[0].Text} then {parts[1].Text} within {FormatDuration(within)}",
            _ => $"no record for {FormatDuration(duration)}" + (window is null ? string.Empty : $" during {window}"),
        };
        Hash = SHA256.HashData(Encoding.UTF8.GetBytes(Text));
    }

    /// <summary>A condition, or how the <see cref="Parts"/> combine.</summary>
    public TriggerKind Kind { get; } = TriggerKind.Condition;

    /// <summary>The conditions of an <see cref="TriggerKind.All"/> or <see cref="TriggerKind.Sequence"/> rule, in order; empty otherwise.</summary>
    public IReadOnlyList<TriggerRule> Parts { get; }

    /// <summary>For a sequence: how long after the first condition fired the second may fire.</summary>
    public TimeSpan Within { get; }

    /// <summary>Reading name, or <c>distance_from</c> with <see cref="Place"/>.</summary>
    public string Quantity { get; }

    public string? Place { get; }

    public Comparison Comparison { get; }

    /// <summary>The threshold as written, in <see cref="Unit"/>.</summary>
    public double Threshold { get; }

    /// <summary>Canonical unit spelling, or null for unitless readings.</summary>
    public string? Unit { get; }

    /// <summary>The threshold in the reading's own unit (Cel, m/s2, Pa, %RH, metres for distances).</summary>
    public double ThresholdInBaseUnit { get; }

    /// <summary>How long the condition must hold continuously; zero fires on the first matching reading.</summary>
    public TimeSpan Duration { get; }

    /// <summary>A time window named by the policy; readings outside it never match.</summary>
    public string? Window { get; }

    /// <summary>The canonical text: single spaces, canonical unit and operator spellings, duration in its largest exact unit.</summary>
    public string Text { get; }

    /// <summary>SHA-256 of the UTF-8 canonical text, stored in the policy and every payout instruction.</summary>
    public byte[] Hash { get; }

    public string HashHex => Convert.ToHexStringLower(Hash);

    public bool IsDistance => Place is not null;

    public override string ToString() => Text;

    /// <summary>Parses a rule; false with a reason when the text is not one.</summary>
    public static bool TryParse(string? text, out TriggerRule? rule, out string? reason)
    {
        rule = null;
        reason = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            reason = "the rule is empty";
            return false;
        }

        if (text.Length > 256)
        {
            reason = "the rule is longer than 256 characters";
            return false;
        }

        var tokens = Tokenize(text);
        if (tokens.Count > 0 && tokens[0] == "no")
        {
            return TryParseAbsence(tokens, out rule, out reason);
        }

        var then = tokens.IndexOf("then");
        if (then >= 0)
        {
            return TryParseSequence(tokens, then, out rule, out reason);
        }

        if (tokens.Contains("and"))
        {
            var parts = new List<TriggerRule>();
            foreach (var group in Split(tokens, "and"))
            {
                if (!TryParseCondition(group, out var part, out reason))
                {
                    return false;
                }

                parts.Add(part!);
            }

            rule = new TriggerRule(TriggerKind.All, parts, TimeSpan.Zero, TimeSpan.Zero, null);
            return true;
        }

        return TryParseCondition(tokens, out rule, out reason);
    }

    // no record for DURATION [during WINDOW]
    private static bool TryParseAbsence(List<string> tokens, out TriggerRule? rule, out string? reason)
    {
        rule = null;
        reason = null;
        if (tokens.Count < 4 || tokens[1] != "record" || tokens[2] != "for" || !TryDuration(tokens[3], out var duration))
        {
            reason = "an absence reads 'no record for DURATION [during WINDOW]' (e.g. no record for 48h during trip)";
            return false;
        }

        string? window = null;
        if (tokens.Count > 4)
        {
            if (tokens.Count != 6 || tokens[4] != "during" || !IsName(tokens[5]))
            {
                reason = "after 'no record for DURATION' only 'during WINDOW' may follow";
                return false;
            }

            window = tokens[5];
        }

        rule = new TriggerRule(TriggerKind.Absence, [], duration, TimeSpan.Zero, window);
        return true;
    }

    // CONDITION then CONDITION within DURATION
    private static bool TryParseSequence(List<string> tokens, int then, out TriggerRule? rule, out string? reason)
    {
        rule = null;
        var within = tokens.LastIndexOf("within");
        if (tokens.Contains("and") || tokens.IndexOf("then", then + 1) >= 0)
        {
            reason = "a sequence joins exactly two conditions ('A then B within DURATION'), without 'and'";
            return false;
        }

        if (within < then || within != tokens.Count - 2 || !TryDuration(tokens[^1], out var window))
        {
            reason = "a sequence ends with 'within DURATION' (e.g. free_fall == 1 then shock > 8 g within 1s)";
            return false;
        }

        if (!TryParseCondition(tokens[..then], out var first, out reason) || !TryParseCondition(tokens[(then + 1)..within], out var second, out reason))
        {
            return false;
        }

        rule = new TriggerRule(TriggerKind.Sequence, [first!, second!], TimeSpan.Zero, window, null);
        return true;
    }

    private static IEnumerable<List<string>> Split(List<string> tokens, string separator)
    {
        var group = new List<string>();
        foreach (var token in tokens)
        {
            if (token == separator)
            {
                yield return group;
                group = [];
            }
            else
            {
                group.Add(token);
            }
        }

        yield return group;
    }

    private static bool IsName(string token) => IsIdentifier(token) && !Keywords.Contains(token);

    private static bool TryParseCondition(List<string> tokens, out TriggerRule? rule, out string? reason)
    {
        rule = null;
        reason = null;
        if (tokens.Count == 0)
        {
            reason = "a condition is empty";
            return false;
        }

        var i = 0;
        string quantity;
        string? place = null;
        var first = tokens[i++];
        if (first.StartsWith("distance_from(", StringComparison.Ordinal) && first.EndsWith(')'))
        {
            quantity = "distance_from";
            place = first["distance_from(".Length..^1];
            if (!IsName(place))
            {
                reason = $"'{place}' is not a place name (letters, digits, '_')";
                return false;
            }
        }
        else if (IsIdentifier(first))
        {
            quantity = first;
        }
        else
        {
            reason = $"'{first}' is not a reading name or distance_from(PLACE)";
            return false;
        }

        if (!Units.TryGetValue(quantity, out var allowedUnits))
        {
            reason = $"unknown reading '{quantity}' (known: {string.Join(", ", Units.Keys.Order(StringComparer.Ordinal))})";
            return false;
        }

        if (i >= tokens.Count || !TryComparison(tokens[i++], out var comparison))
        {
            reason = "expected a comparison (==, !=, <, <=, >, >=) after the operand";
            return false;
        }

        if (i >= tokens.Count || !double.TryParse(tokens[i++], NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var threshold)
            || !double.IsFinite(threshold))
        {
            reason = "expected a number after the comparison";
            return false;
        }

        string? unit = null;
        var factor = 1.0;
        var offset = 0.0;
        if (i < tokens.Count && tokens[i] is not ("for" or "during"))
        {
            var spelled = tokens[i++];
            var match = allowedUnits.FirstOrDefault(u => u.Spellings.Contains(spelled));
            if (match is null)
            {
                reason = allowedUnits.Count == 0
                    ? $"'{quantity}' takes no unit, found '{spelled}'"
                    : $"unit '{spelled}' does not apply to '{quantity}' (use {string.Join(", ", allowedUnits.Select(u => u.Canonical))})";
                return false;
            }

            unit = match.Canonical;
            factor = match.Factor;
            offset = match.Offset;
        }
        else if (allowedUnits.Count > 0)
        {
            // A bare number is ambiguous for a physical quantity (is "shock > 8" in g or m/s2?).
            reason = $"'{quantity}' needs a unit ({string.Join(", ", allowedUnits.Select(u => u.Canonical))})";
            return false;
        }

        var duration = TimeSpan.Zero;
        string? window = null;
        if (i < tokens.Count && tokens[i] == "for")
        {
            i++;
            if (i >= tokens.Count || !TryDuration(tokens[i++], out duration))
            {
                reason = "expected a duration after 'for' (e.g. 90s, 10m, 2h, 2d)";
                return false;
            }
        }

        if (i < tokens.Count && tokens[i] == "during")
        {
            i++;
            if (i >= tokens.Count || !IsName(tokens[i]))
            {
                reason = "expected a window name after 'during'";
                return false;
            }

            window = tokens[i++];
        }

        if (i < tokens.Count)
        {
            reason = $"unexpected '{tokens[i]}'";
            return false;
        }

        rule = new TriggerRule(quantity, place, comparison, threshold, unit, (threshold * factor) + offset, duration, window);
        return true;
    }

    /// <summary>Parses a rule the caller vouches for (policy creation, stored policies); throws <see cref="FormatException"/> otherwise.</summary>
    public static TriggerRule Parse(string text) =>
        TryParse(text, out var rule, out var reason) ? rule! : throw new FormatException($"Invalid trigger rule: {reason}");

    /// <summary>Whether a value, already in the reading's unit, satisfies the comparison.</summary>
    public bool Matches(double value) => Comparison switch
    {
        Comparison.Equal => value == ThresholdInBaseUnit,
        Comparison.NotEqual => value != ThresholdInBaseUnit,
        Comparison.Less => value < ThresholdInBaseUnit,
        Comparison.LessOrEqual => value <= ThresholdInBaseUnit,
        Comparison.Greater => value > ThresholdInBaseUnit,
        Comparison.GreaterOrEqual => value >= ThresholdInBaseUnit,
        _ => false,
    };

    private string Canonical()
    {
        var text = new StringBuilder();
        text.Append(IsDistance ? $"distance_from({Place})" : Quantity)
            .Append(' ').Append(Comparison switch
            {
                Comparison.Equal => "==",
                Comparison.NotEqual => "!=",
                Comparison.Less => "<",
                Comparison.LessOrEqual => "<=",
                Comparison.Greater => ">",
                _ => ">=",
            })
            .Append(' ').Append(Threshold.ToString("R", CultureInfo.InvariantCulture));
        if (Unit is not null)
        {
            text.Append(' ').Append(Unit);
        }

        if (Duration > TimeSpan.Zero)
        {
            text.Append(" for ").Append(FormatDuration(Duration));
        }

        if (Window is not null)
        {
            text.Append(" during ").Append(Window);
        }

        return text.ToString();
    }

    private static string FormatDuration(TimeSpan duration)
    {
        var seconds = (long)duration.TotalSeconds;
        return seconds % 86400 == 0 ? $"{seconds / 86400}d"
            : seconds % 3600 == 0 ? $"{seconds / 3600}h"
            : seconds % 60 == 0 ? $"{seconds / 60}m"
            : $"{seconds}s";
    }

    private static bool TryDuration(string token, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (token.Length < 2)
        {
            return false;
        }

        var (number, scale) = token.EndsWith("min", StringComparison.Ordinal) ? (token[..^3], 60L)
            : token[^1] switch
            {
                's' => (token[..^1], 1L),
                'm' => (token[..^1], 60L),
                'h' => (token[..^1], 3600L),
                'd' => (token[..^1], 86400L),
                _ => (string.Empty, 0L),
            };
        if (scale == 0 || !long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count <= 0 || count > 366L * 86400 / scale)
        {
            return false;
        }

        duration = TimeSpan.FromSeconds(count * scale);
        return true;
    }

    private static bool TryComparison(string token, out Comparison comparison)
    {
        comparison = token switch
        {
            "==" or "=" => Comparison.Equal,
            "!=" => Comparison.NotEqual,
            "<" => Comparison.Less,
            "<=" => Comparison.LessOrEqual,
            ">" => Comparison.Greater,
            ">=" => Comparison.GreaterOrEqual,
            _ => (Comparison)(-1),
        };
        return Enum.IsDefined(comparison);
    }

    private static bool IsIdentifier(string token) =>
        token.Length is > 0 and <= 64 && char.IsAsciiLetter(token[0]) && token.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    /// <summary>Splits on white space, and separates a comparison glued to its neighbours ("x<0").</summary>
    private static List<string> Tokenize(string text)
    {
        var spaced = new StringBuilder(text.Length + 8);
        for (var k = 0; k < text.Length; k++)
        {
            var c = text[k];
            if (c is '<' or '>' or '=' or '!')
            {
                spaced.Append(' ').Append(c);
                if (k + 1 < text.Length && text[k + 1] == '=')
                {
                    spaced.Append('=');
                    k++;
                }

                spaced.Append(' ');
            }
            else
            {
                spaced.Append(c);
            }
        }

        // "0°C" reads as "0 °C"
        var tokens = new List<string>();
        foreach (var raw in spaced.ToString().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            var degree = raw.IndexOf('°', StringComparison.Ordinal);
            if (degree > 0 && char.IsAsciiDigit(raw[degree - 1]))
            {
                tokens.Add(raw[..degree]);
                tokens.Add(raw[degree..]);
            }
            else
            {
                tokens.Add(raw);
            }
        }

        return tokens;
    }

    private sealed record UnitSpec(string Canonical, double Factor, double Offset, params string[] Spellings);

    /// <summary>Units each operand accepts; Factor/Offset convert to the reading's SenML unit.</summary>
    private static readonly Dictionary<string, IReadOnlyList<UnitSpec>> Units = new(StringComparer.Ordinal)
    {
        ["temperature"] = [new("Cel", 1, 0, "Cel", "°C", "C", "degC"), new("K", 1, -273.15, "K")],
        ["humidity"] = [new("%RH", 1, 0, "%RH", "%")],
        ["pressure"] = [new("Pa", 1, 0, "Pa"), new("hPa", 100, 0, "hPa"), new("kPa", 1000, 0, "kPa")],
        ["water_leak"] = [],
        ["free_fall"] = [],
        ["gps_fix"] = [],
        ["shock"] = [new("m/s2", 1, 0, "m/s2", "m/s²"), new("g", StandardGravity, 0, "g")],
        ["latitude"] = [new("lat", 1, 0, "lat", "°")],
        ["longitude"] = [new("lon", 1, 0, "lon", "°")],
        ["distance_from"] = [new("m", 1, 0, "m"), new("km", 1000, 0, "km")],
    };
}
