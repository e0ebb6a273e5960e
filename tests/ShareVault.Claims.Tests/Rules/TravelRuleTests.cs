using ShareVault.Claims.Rules;
using ShareVault.Evidence;
using static ShareVault.Claims.Tests.Rules.TriggerRuleTests;

namespace ShareVault.Claims.Tests.Rules;

/// <summary>The rule kinds travel cover needs: conjunctions, sequences and absence (docs/claims-service.md).</summary>
public sealed class TravelRuleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 5, 8, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("water_leak == 1 for 10m", "88f092386bc86c1384edad8ef13ac015eab94ecb2bd7c5772d8915b5c7000f0d")]
    [InlineData("temperature < 0 °C for 2h", "5f370136cb79faf1cbc5af8b6b8fd9f5d486c8f47a3cabeb070094b94251bf20")]
    public void Existing_rule_texts_keep_their_hashes(string text, string sha256)
    {
        var rule = TriggerRule.Parse(text);
        Assert.Equal(TriggerKind.Condition, rule.Kind);
        Assert.Equal(sha256, rule.HashHex);
    }

    [Theory]
    [InlineData("free_fall==1 then shock>8 g within 1s", "free_fall == 1 then shock > 8 g within 1s", TriggerKind.Sequence)]
    [InlineData("temperature < 0 °C for 120min and humidity > 90 %", "temperature < 0 Cel for 2h and humidity > 90 %RH", TriggerKind.All)]
    [InlineData("no record for 2880m during trip", "no record for 2d during trip", TriggerKind.Absence)]
    [InlineData("no  record for 48h", "no record for 2d", TriggerKind.Absence)]
    [InlineData("distance_from(home) > 100 km for 48h during trip and gps_fix >= 1", "distance_from(home) > 100 km for 2d during trip and gps_fix >= 1", TriggerKind.All)]
    public void Travel_rules_parse_to_their_canonical_text(string text, string canonical, TriggerKind kind)
    {
        var rule = TriggerRule.Parse(text);
        Assert.Equal(canonical, rule.Text);
        Assert.Equal(kind, rule.Kind);
        Assert.Equal(rule.Text, TriggerRule.Parse(rule.Text).Text);
    }

    [Theory]
    [InlineData("free_fall == 1 then shock > 8 g", "within")]
    [InlineData("free_fall == 1 then shock > 8 g within 1s and water_leak == 1", "without 'and'")]
    [InlineData("free_fall == 1 then then shock > 8 g within 1s", "exactly two")]
    [InlineData("no record", "absence reads")]
    [InlineData("no record for 48h during", "only 'during WINDOW'")]
    [InlineData("water_leak == 1 and", "empty")]
    [InlineData("water_leak == 1 for 10m during and", "window name")]
    public void Malformed_travel_rules_are_refused_with_a_reason(string text, string reasonPart)
    {
        Assert.False(TriggerRule.TryParse(text, out _, out var reason));
        Assert.Contains(reasonPart, reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Free_fall_then_a_shock_within_a_second_fires_with_both_records()
    {
        var rule = TriggerRule.Parse("free_fall == 1 then shock > 8 g within 1s");
        List<EvidenceFacts> records =
        [
            Facts(1, Fall(0, T0), Shock(9.8, T0)),
            Facts(2, Fall(1, T0.AddMilliseconds(10_000)), Shock(9.8, T0.AddMilliseconds(10_000))),
            Facts(3, Fall(0, T0.AddMilliseconds(10_400)), Shock(117, T0.AddMilliseconds(10_400))),
            Facts(4, Fall(0, T0.AddMinutes(1)), Shock(9.8, T0.AddMinutes(1))),
        ];

        var firing = Assert.Single(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));

        Assert.Equal([2L, 3L], firing.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void A_shock_alone_or_too_late_after_a_fall_does_not_fire_the_sequence()
    {
        var rule = TriggerRule.Parse("free_fall == 1 then shock > 8 g within 1s");
        List<EvidenceFacts> shockAlone = [Facts(1, Fall(0, T0), Shock(117, T0))];
        List<EvidenceFacts> tooLate = [Facts(1, Fall(1, T0), Shock(9.8, T0)), Facts(2, Fall(0, T0.AddSeconds(2)), Shock(117, T0.AddSeconds(2)))];
        List<EvidenceFacts> shockThenFall = [Facts(1, Fall(0, T0), Shock(117, T0)), Facts(2, Fall(1, T0.AddMilliseconds(300)), Shock(9.8, T0.AddMilliseconds(300)))];

        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, shockAlone));
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, tooLate));
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, shockThenFall));
    }

    [Fact]
    public void A_conjunction_fires_when_both_hold_at_once_and_lists_both_episodes()
    {
        var rule = TriggerRule.Parse("temperature < 0 °C for 2h and humidity > 90 %RH");
        var records = Enumerable.Range(0, 12).Select(i => Facts(i,
            new Reading("temperature", "Cel", i >= 1 ? -2 : 4, T0.AddMinutes(30 * i)),
            new Reading("humidity", "%RH", i >= 6 ? 95 : 60, T0.AddMinutes(30 * i)))).ToList();

        var firing = Assert.Single(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));

        Assert.Equal(6, firing.Records[^1].Sequence); // at 3 h: freezing for 2.5 h, humid since this record
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), firing.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void A_conjunction_with_one_part_never_holding_does_not_fire()
    {
        var rule = TriggerRule.Parse("temperature < 0 °C for 2h and humidity > 90 %RH");
        var records = Enumerable.Range(0, 12).Select(i => Facts(i,
            new Reading("temperature", "Cel", -2, T0.AddMinutes(30 * i)),
            new Reading("humidity", "%RH", 60, T0.AddMinutes(30 * i)))).ToList();
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));
    }

    [Fact]
    public void Absence_fires_on_the_clock_once_per_last_record_within_the_trip()
    {
        var rule = TriggerRule.Parse("no record for 48h during trip");
        var trip = new TimeWindow(T0, T0.AddDays(10));
        var context = new RuleContext(new Dictionary<string, Place>(), new Dictionary<string, TimeWindow> { ["trip"] = trip });
        var evaluator = new TriggerEvaluator(rule, context);
        Assert.True(evaluator.NeedsClock);
        Assert.Null(evaluator.Tick(T0.AddDays(3))); // never seen: nothing to be silent after
        evaluator.Feed(Facts(1, Fall(0, T0.AddHours(1))));
        evaluator.Feed(Facts(2, Fall(0, T0.AddHours(2))));

        Assert.Null(evaluator.Tick(T0.AddHours(49)));
        var firing = evaluator.Tick(T0.AddHours(50));
        Assert.Null(evaluator.Tick(T0.AddHours(51))); // once per silence

        Assert.NotNull(firing);
        Assert.Equal([2L], firing.Records.Select(r => r.Sequence));
        Assert.Equal((T0.AddHours(2), T0.AddHours(50)), (firing.From, firing.Until));

        // Saved and restored between the record and the tick, it decides alike.
        var restored = TriggerEvaluator.Restore(rule, context, "dev-1", new TriggerEvaluator(rule, context).Also(e => e.Feed(Facts(2, Fall(0, T0.AddHours(2))))).SaveState(), 2);
        Assert.Equal(2, restored.Tick(T0.AddHours(50))!.Records[0].Sequence);
    }

    [Fact]
    public void Silence_outside_the_trip_or_shorter_than_the_rule_does_not_fire()
    {
        var rule = TriggerRule.Parse("no record for 48h during trip");
        var trip = new TimeWindow(T0, T0.AddDays(1));
        var context = new RuleContext(new Dictionary<string, Place>(), new Dictionary<string, TimeWindow> { ["trip"] = trip });
        Assert.Empty(TriggerEvaluator.Evaluate(rule, context, [Facts(1, Fall(0, T0.AddHours(1)))], decidedAt: T0.AddDays(5)));
        Assert.Empty(TriggerEvaluator.Evaluate(rule, RuleContext.Empty.With("trip", new TimeWindow(T0, T0.AddDays(9))), [Facts(1, Fall(0, T0))], decidedAt: T0.AddHours(47)));
    }

    [Fact]
    public void Combined_rules_saved_and_restored_at_every_record_fire_as_one_that_ran_through()
    {
        var rule = TriggerRule.Parse("free_fall == 1 then shock > 8 g within 1s");
        var records = Enumerable.Range(0, 20).Select(i => Facts(i, Fall(i == 7 ? 1 : 0, T0.AddMilliseconds(500 * i)), Shock(i == 8 ? 117 : 9.8, T0.AddMilliseconds(500 * i)))).ToList();
        var expected = Assert.Single(TriggerEvaluator.Evaluate(rule, RuleContext.Empty, records));
        var state = new TriggerEvaluator(rule, RuleContext.Empty).SaveState();
        var firings = new List<TriggerFiring>();
        foreach (var record in records)
        {
            var evaluator = TriggerEvaluator.Restore(rule, RuleContext.Empty, "dev-1", state, record.Sequence - 1);
            if (evaluator.Feed(record) is { } firing)
            {
                firings.Add(firing);
            }

            state = evaluator.SaveState();
        }

        Assert.Equal(expected.Records.Select(r => r.Sequence), Assert.Single(firings).Records.Select(r => r.Sequence));
    }

    private static Reading Fall(double value, DateTimeOffset time) => new("free_fall", null, value, time);

    private static Reading Shock(double value, DateTimeOffset time) => new("shock", "m/s2", value, time);
}

internal static class TestExtensions
{
    public static T Also<T>(this T value, Action<T> action)
    {
        action(value);
        return value;
    }

    public static RuleContext With(this RuleContext context, string window, TimeWindow value) =>
        new(context.Places, new Dictionary<string, TimeWindow>(context.Windows) { [window] = value });
}
