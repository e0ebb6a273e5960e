using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DeviceAgent.Sensors;
using Simulators;
using Simulators.Scenarios;

var root = new RootCommand("ShareVault simulators: register-level sensor kits driven by scenario files");

var list = new Command("scenarios", "List the built-in scenarios");
list.SetAction(_ =>
{
    foreach (var name in SimulatedKit.AvailableScenarios)
    {
        var scenario = Scenario.BuiltIn(name);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-14} {scenario.DeviceKind,-8} {scenario.Duration.TotalHours,6:F1} h  {scenario.Description}"));
    }

    return 0;
});
root.Subcommands.Add(list);

var scenarioOption = new Option<string>("--scenario") { Description = "Built-in scenario name, or a path to a scenario .json file", Required = true };
var minutesOption = new Option<double?>("--minutes") { Description = "Minutes of scenario time to run (default: the scenario's duration)" };
var stepOption = new Option<double?>("--step-seconds") { Description = "Polling interval in scenario seconds (default: the scenario's step)" };
var sinkOption = new Option<string?>("--sink") { Description = "dir:PATH writes readings.jsonl into PATH" };
var run = new Command("run", "Run the real drivers against a scenario's simulated sensors, faster than real time")
{
    scenarioOption, minutesOption, stepOption, sinkOption,
};
run.SetAction(async (result, cancellationToken) =>
{
    var name = result.GetValue(scenarioOption)!;
    Scenario scenario;
    try
    {
        scenario = name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Scenario.Load(name) : Scenario.BuiltIn(name);
    }
    catch (Exception ex) when (ex is ArgumentException or InvalidDataException or IOException)
    {
        await Console.Error.WriteLineAsync($"simulators: {ex.Message}").ConfigureAwait(false);
        return 2;
    }

    string? sinkDir = null;
    if (result.GetValue(sinkOption) is { } sink)
    {
        if (!sink.StartsWith("dir:", StringComparison.Ordinal) || sink.Length == 4)
        {
            await Console.Error.WriteLineAsync("simulators: --sink must be dir:PATH").ConfigureAwait(false);
            return 2;
        }

        sinkDir = Path.GetFullPath(sink[4..]);
        Directory.CreateDirectory(sinkDir);
    }

    var length = result.GetValue(minutesOption) is { } minutes ? TimeSpan.FromMinutes(minutes) : scenario.Duration;
    var step = result.GetValue(stepOption) is { } seconds ? TimeSpan.FromSeconds(seconds) : scenario.Step;
    var clock = new ScenarioClock(new DateTimeOffset(2026, 1, 15, 6, 0, 0, TimeSpan.Zero));
    using var kit = SimulatedKit.Create(scenario, clock);
    Console.WriteLine($"scenario {scenario.Name} ({scenario.DeviceKind} kit at {scenario.Location.Label}): {scenario.Description}");
    await using var output = sinkDir is null ? null : new StreamWriter(Path.Combine(sinkDir, "readings.jsonl"));
    foreach (var stepResult in ScenarioRunner.Run(kit, length, step))
    {
        cancellationToken.ThrowIfCancellationRequested();
        foreach (var (kind, sample) in stepResult.Events.Select(s => ("event", s)).Concat(stepResult.Polled.Select(s => ("poll", s))))
        {
            var minute = (stepResult.Time - kit.Start).TotalMinutes;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{minute,8:F1} min  {kind,-5} {Describe(sample)}"));
            if (output is not null)
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(new { kind, sample.SensorId, sample.Fault, sample.Readings })).ConfigureAwait(false);
            }
        }
    }

    return 0;
});
root.Subcommands.Add(run);
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);

static string Describe(SensorSample sample) => sample.Fault is { } fault
    ? $"{sample.SensorId}: FAULT {fault}"
    : $"{sample.SensorId}: " + string.Join(", ", sample.Readings.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Name}={r.Value:0.###}{(r.Unit is null ? string.Empty : " " + r.Unit)}")));
