using System.Text;
using Simulators.Scenarios;

namespace Simulators.Tests;

public sealed class ScenarioFileTests
{
    public static TheoryData<string> BuiltIns => [.. SimulatedKit.AvailableScenarios];

    [Fact]
    public void The_issue_scenarios_are_built_in()
    {
        Assert.Equal(new[] { "home-flood", "lost-bag", "luggage-bump", "luggage-drop", "pipe-freeze", "quiet-home", "trip-delay" }, SimulatedKit.AvailableScenarios);
    }

    [Theory]
    [MemberData(nameof(BuiltIns))]
    public void Built_in_scenario_loads_and_its_file_is_copied_next_to_the_binary(string name)
    {
        var scenario = Scenario.BuiltIn(name);
        Assert.Equal(name, scenario.Name);
        Assert.False(string.IsNullOrWhiteSpace(scenario.Description));
        var copy = Path.Combine(AppContext.BaseDirectory, "Scenarios", name + ".json");
        Assert.Equal(scenario, Scenario.Load(copy) with { Timeline = scenario.Timeline });
        Assert.Equal(scenario.Timeline, Scenario.Load(copy).Timeline);
    }

    [Fact]
    public void Unknown_scenario_name_lists_the_available_ones()
    {
        var ex = Assert.Throws<ArgumentException>(() => Scenario.BuiltIn("volcano"));
        Assert.Contains("home-flood", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{ "name": "x" }""", "missing required properties")]
    [InlineData("""{ "name": "x", "description": "", "deviceKind": "car", "durationMinutes": 10, "stepSeconds": 60, "seed": 1, "location": { "label": "l", "latitude": 1, "longitude": 2 }, "environment": { "temperatureCelsius": 20, "humidityPercent": 40, "pressurePascal": 101000 }, "timeline": [] }""", "deviceKind")]
    [InlineData("""{ "name": "x", "description": "", "deviceKind": "home", "durationMinutes": 10, "stepSeconds": 60, "seed": 1, "location": { "label": "l", "latitude": 1, "longitude": 2 }, "environment": { "temperatureCelsius": 20, "humidityPercent": 40, "pressurePascal": 101000 }, "timeline": [ { "atMinutes": 5, "kind": "earthquake" } ] }""", "timeline[0]")]
    [InlineData("""{ "name": "x", "description": "", "deviceKind": "luggage", "durationMinutes": 10, "stepSeconds": 60, "seed": 1, "location": { "label": "l", "latitude": 1, "longitude": 2 }, "environment": { "temperatureCelsius": 20, "humidityPercent": 40, "pressurePascal": 101000 }, "timeline": [ { "atMinutes": 5, "kind": "drop", "peakG": 30 } ] }""", "peakG")]
    [InlineData("""{ "name": "x", "description": "", "deviceKind": "home", "durationMinutes": 10, "stepSeconds": 60, "seed": 1, "location": { "label": "l", "latitude": 1, "longitude": 2 }, "environment": { "temperatureCelsius": 20, "humidityPercent": 40, "pressurePascal": 101000 }, "timeline": [], "colour": "red" }""", "colour")]
    [InlineData("not json", "Scenario test.json")]
    public void Invalid_scenario_file_is_refused_with_the_problem(string json, string expected)
    {
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        var ex = Assert.Throws<InvalidDataException>(() => Scenario.Parse(stream, "test.json"));
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }
}
