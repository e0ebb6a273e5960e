using ShareVault.TestSupport;

namespace Simulators.Tests;

/// <summary>The simulators CLI, run as a process the way a user runs it.</summary>
public sealed class ProgramTests : IDisposable
{
    private readonly string _sink = Path.Combine(Path.GetTempPath(), $"sim-{Guid.NewGuid():N}"[..16]);

    public void Dispose()
    {
        if (Directory.Exists(_sink))
        {
            Directory.Delete(_sink, recursive: true);
        }
    }

    private static Task<ProcessRunner.Result> Simulators(params string[] args) =>
        ProcessRunner.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "Simulators.dll"), .. args], TimeSpan.FromMinutes(2));

    [Fact]
    public async Task Scenarios_verb_lists_every_built_in_scenario()
    {
        var result = await Simulators("scenarios");
        Assert.Equal(0, result.ExitCode);
        foreach (var name in SimulatedKit.AvailableScenarios)
        {
            Assert.Contains(name, result.StdOut, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Run_verb_prints_readings_per_step_and_writes_the_sink()
    {
        var result = await Simulators("run", "--scenario", "home-flood", "--minutes", "35", "--sink", $"dir:{_sink}");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("event leak-probe: water_leak=1", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("bme280: temperature=", result.StdOut, StringComparison.Ordinal);
        var lines = await File.ReadAllLinesAsync(Path.Combine(_sink, "readings.jsonl"));
        Assert.Equal((36 * 2) + 1, lines.Length); // two sensors per step, plus the leak event
    }

    [Fact]
    public async Task Unknown_scenario_fails_with_a_message()
    {
        var result = await Simulators("run", "--scenario", "volcano", "--minutes", "1");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("No scenario named 'volcano'", result.StdErr, StringComparison.Ordinal);
    }
}
