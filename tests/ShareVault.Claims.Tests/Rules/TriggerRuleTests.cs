using ShareVault.Claims.Rules;
using ShareVault.Evidence;


namespace ShareVault.Claims.Tests.Rules;

public sealed class TriggerRuleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 5, 8, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("water_leak == 1 for 10m", "water_leak == 1 for 10m")]
    [InlineData("water_leak==1 for 600s", "water_leak == 1 for 10m")]
    [InlineData("temperature < 0 °C for 2h", "temperature < 0 Cel for 2h")]
    [InlineData("temperature<0°C for 120min", "temperature < 0 Cel for 2h")]
    [InlineData("shock > 8 g", "shock > 8 g")]
    [InlineData("distance_from(home) < 1 km for 48h during trip", "distance_from(home) < 1 km for 2d during trip")]
    [InlineData("  humidity   >=  95.5 %RH ", "humidity >= 95.5 %RH")]
    public void Rules_parse_to_their_canonical_text(string text, string canonical)
    {
        var rule = TriggerRule.Parse(text);
        Assert.Equal(canonical, rule.Text);
        Assert.Equal(rule.Text, TriggerRule.Parse(rule.Text).Text);
        Assert.Equal(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(canonical)), rule.Hash);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("rain > 3", "unknown reading")]
    [InlineData("water_leak ~ 1", "comparison")]
    [InlineData("water_leak == wet", "number")]
    [InlineData("shock > 8", "needs a unit")]
    [InlineData("shock > 8 Cel", "does not apply")]
    [InlineData("water_leak == 1 for ten minutes", "duration")]
    [InlineData("water_leak == 1 for 10m please", "unexpected")]
    [InlineData("distance_from(ho/me) < 1 km", "place name")]
    public void Malformed_rules_are_refused_with_a_reason(string text, string reasonPart)
    {
        Assert.False(TriggerRule.TryParse(text, out var rule, out var reason));
        Assert.Null(rule);
        Assert.Contains(reasonPart, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Shock_in_g_compares_in_metres_per_second_squared()
    {
        var rule = TriggerRule.Parse("shock > 8 g");
        Assert.Equal(8 * 9.80665, rule.ThresholdInBaseUnit, 9);
        Assert.False(rule.Matches(78.0));
        Assert.True(rule.Matches(78.5));
    }

    [Fact]
    public void A_leak_lasting_ten_minutes_fires_once()
    {
        var rule = TriggerRule.Parse("water_leak == 1 for 10m");
        var records = Series("water_leak", [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], TimeSpan.FromMinutes(1));
        var firings = TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records);
        var firing = Assert.Single(firings);
        Assert.Equal(T0.AddMinutes(1), firing.From);
        Assert.Equal(T0.AddMinutes(11), firing.Until);
        Assert.Equal(Enumerable.Range(1, 11).Select(i => (long)i), firing.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void A_leak_shorter_than_the_duration_or_interrupted_does_not_fire()
    {
        var rule = TriggerRule.Parse("water_leak == 1 for 10m");
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, Series("water_leak", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], TimeSpan.FromMinutes(1))));
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, Series("water_leak", [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], TimeSpan.FromMinutes(1))));
    }

    [Fact]
    public void Two_separate_episodes_fire_twice()
    {
        var rule = TriggerRule.Parse("shock > 8 g");
        var firings = TriggerEvaluator.Evaluate(rule, RuleContext.Empty, Series("shock", [9.8, 90, 95, 9.8, 100], TimeSpan.FromSeconds(1)));
        Assert.Equal(2, firings.Count);
        Assert.Equal(1, Assert.Single(firings[0].Records).Sequence);
        Assert.Equal(4, Assert.Single(firings[1].Records).Sequence);
    }

    [Fact]
    public void Freezing_for_two_hours_fires_and_records_without_temperature_are_neutral()
    {
        var rule = TriggerRule.Parse("temperature < 0 °C for 2h");
        var records = new List<EvidenceFacts>();
        for (var i = 0; i <= 12; i++)
        {
            records.Add(Facts(2 * i, new Reading("temperature", "Cel", -1.5, T0.AddMinutes(10 * i))));
            records.Add(Facts((2 * i) + 1, new Reading("humidity", "%RH", 40, T0.AddMinutes((10 * i) + 5))));
        }

        var firing = Assert.Single(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));
        Assert.Equal(TimeSpan.FromHours(2), firing.Until - firing.From);
    }

    [Fact]
    public void Distance_from_home_during_the_trip_uses_the_policy_place_and_window()
    {
        var rule = TriggerRule.Parse("distance_from(airport) < 1 km for 48h during trip");
        var context = new RuleContext(
            new Dictionary<string, Place> { ["airport"] = new(49.0097, 2.5479) },
            new Dictionary<string, TimeWindow> { ["trip"] = new(T0, T0.AddDays(5)) });
        var records = Enumerable.Range(0, 50).Select(h => Facts(h,
            new Reading("latitude", "lat", 49.0097 + 0.001, T0.AddHours(h)),
            new Reading("longitude", "lon", 2.5479, T0.AddHours(h)))).ToList();
        var firing = Assert.Single(TriggerEvaluator.Evaluate(rule, context, records));
        Assert.Equal(T0.AddHours(48), firing.Until);

        var far = records.Select(r => Facts(r.Sequence, r.Readings[0] with { Value = 48.0 }, r.Readings[1])).ToList();
        Assert.Empty(TriggerEvaluator.Evaluate(rule, context, far));
        Assert.Throws<ArgumentException>(() => new TriggerEvaluator(rule, RuleContext.Empty));
    }

    [Fact]
    public void A_duration_is_measured_between_records_so_readings_of_one_record_never_meet_it()
    {
        // Both readings lie within the minute before their record (what the evidence format allows),
        // 59 s apart: measured between readings, "for 30s" would be met by this one record.
        var rule = TriggerRule.Parse("water_leak == 1 for 30s");
        var one = new EvidenceFacts("dev-1", 1, T0.AddMinutes(1), System.Security.Cryptography.SHA256.HashData("one"u8),
            [new Reading("water_leak", null, 1, T0), new Reading("water_leak", null, 1, T0.AddSeconds(59))]);
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, [one]));

        var next = Facts(2, new Reading("water_leak", null, 1, T0.AddSeconds(90)));
        var firing = Assert.Single(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, [one, next]));
        Assert.Equal((T0.AddMinutes(1), T0.AddSeconds(90)), (firing.From, firing.Until));
        Assert.Equal([1L, 2L], firing.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void Time_going_backwards_breaks_an_episode()
    {
        var rule = TriggerRule.Parse("water_leak == 1 for 10m");
        var records = new[]
        {
            Facts(1, new Reading("water_leak", null, 1, T0.AddMinutes(20))),
            Facts(2, new Reading("water_leak", null, 1, T0)),
            Facts(3, new Reading("water_leak", null, 1, T0.AddMinutes(5))),
        };
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));
    }

    internal static List<EvidenceFacts> Series(string name, double[] values, TimeSpan step) =>
        [.. values.Select((v, i) => Facts(i, new Reading(name, null, v, T0 + (step * i))))];

    /// <summary>A record made when its latest reading was taken (the agent reads, then records).</summary>
    internal static EvidenceFacts Facts(long seq, params Reading[] readings) =>
        new("dev-1", seq, readings.Length > 0 ? readings.Max(r => r.Time) : T0, System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(seq)), readings);

    [Fact]
    public void An_evaluator_saved_and_restored_at_every_record_fires_exactly_as_one_that_ran_through()
    {
        var rule = TriggerRule.Parse("water_leak == 1 for 10m");
        var records = Enumerable.Range(0, 30).Select(i => new EvidenceFacts("dev-1", i, T0.AddMinutes(i), System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)),
            [new Reading("water_leak", null, i is >= 3 and < 9 or >= 12 ? 1 : 0, T0.AddMinutes(i))])).ToList();
        var expected = TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records);

        var firings = new List<TriggerFiring>();
        var state = new TriggerEvaluator(rule, RuleContext.Empty).SaveState();
        Assert.Equal("{}", state);
        foreach (var record in records)
        {
            var evaluator = TriggerEvaluator.Restore(rule, RuleContext.Empty, "dev-1", state, record.Sequence - 1);
            if (evaluator.Feed(record) is { } firing)
            {
                firings.Add(firing);
            }

            state = evaluator.SaveState();
        }

        var single = Assert.Single(expected);
        var restored = Assert.Single(firings);
        Assert.Equal((single.From, single.Until), (restored.From, restored.Until));
        Assert.Equal(single.Records.Select(r => (r.Sequence, Convert.ToHexStringLower(r.Hash))), restored.Records.Select(r => (r.Sequence, Convert.ToHexStringLower(r.Hash))));
        Assert.Equal(12, restored.Records[0].Sequence);
    }
}
