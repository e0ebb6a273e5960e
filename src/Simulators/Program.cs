using System.CommandLine;
using System.Globalization;
using DeviceAgent.Delivery;
using Microsoft.Extensions.Logging;
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
var sinkOption = new Option<string>("--sink") { Description = "dir:PATH writes each signed record as PATH/<seq>.cose and the device key as PATH/device.pem", Required = true };
var brokerOption = new Option<string?>("--broker")
{
    Description = "mqtt://host:port or mqtts://host:port: deliver the records over MQTT instead (device login by signed proof), waiting for the service's receipts",
};
var caOption = new Option<string?>("--ca-file") { Description = "With mqtts://: PEM of the CA the broker's certificate must chain to (pinned)" };
var waitOption = new Option<int>("--receipt-timeout") { Description = "Seconds to wait for every record to be receipted", DefaultValueFactory = _ => 120 };
var deviceOption = new Option<string?>("--device-id") { Description = "Device id (default: sim-<scenario>)" };
var keyOption = new Option<string?>("--key") { Description = "Device key URI (pkcs11:…;object=LABEL or tpm:…); default: a software key file in the state folder, labelled as such" };
var stateOption = new Option<string?>("--state") { Description = "Agent state folder (sequence, outbox, key); default: PATH/.agent" };
var readingsOption = new Option<bool>("--show-readings") { Description = "Print every sensor reading as well as the records" };
var run = new Command("run", "Run the real drivers and the real agent pipeline against a scenario's simulated sensors, faster than real time")
{
    scenarioOption, minutesOption, stepOption, sinkOption, brokerOption, caOption, waitOption, deviceOption, keyOption, stateOption, readingsOption,
};
run.SetAction(async (result, cancellationToken) =>
{
    var name = result.GetValue(scenarioOption)!;
    try
    {
        var scenario = name.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Scenario.Load(name) : Scenario.BuiltIn(name);
        var sinkDir = DirectorySink.ParseSpec(result.GetValue(sinkOption))
            ?? throw new ArgumentException("--sink must be dir:PATH");
        Directory.CreateDirectory(sinkDir);
        var stateDir = Path.GetFullPath(result.GetValue(stateOption) ?? Path.Combine(sinkDir, ".agent"));
        var deviceId = result.GetValue(deviceOption) ?? "sim-" + scenario.Name;
        var keyUri = result.GetValue(keyOption);
        var software = keyUri is null;
        keyUri ??= "file:" + Path.Combine(stateDir, "device-key.pem");
        var length = result.GetValue(minutesOption) is { } minutes ? TimeSpan.FromMinutes(minutes) : scenario.Duration;
        var step = result.GetValue(stepOption) is { } seconds ? TimeSpan.FromSeconds(seconds) : scenario.Step;

        // Virtual time ends now, so the evidence carries plausible, recent times.
        using var device = SimulatedDevice.Open(scenario, deviceId, stateDir, keyUri, software, DateTimeOffset.UtcNow - length, Logs.CreateLogger("simulators"));
        File.WriteAllText(Path.Combine(sinkDir, "device.pem"), device.PublicKeyPem);
        Console.WriteLine($"scenario {scenario.Name} ({scenario.DeviceKind} kit at {scenario.Location.Label}): {scenario.Description}");
        Console.WriteLine($"device {deviceId}: {(device.HasHardwareKey ? "hardware key " + keyUri : "SOFTWARE key (simulator) " + keyUri)}");
        var records = device.Run(length, step, recorded =>
        {
            if (result.GetValue(readingsOption))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  #{recorded.Record.Sequence} {recorded.Record.Time:HH:mm:ss} ")
                    + string.Join(", ", recorded.Record.Readings.Select(r => string.Create(CultureInfo.InvariantCulture, $"{r.Name}={r.Value:0.###}{(r.Unit is null ? string.Empty : " " + r.Unit)}"))));
            }
        });
        if (result.GetValue(brokerOption) is { } broker)
        {
            var delivered = await DeliverAsync(device, broker, result.GetValue(caOption), TimeSpan.FromSeconds(result.GetValue(waitOption)), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"{records.Count} signed record(s); {delivered} receipted by the service via {broker}; {device.Outbox.Count} still in the outbox");
            return device.Outbox.Count == 0 ? 0 : 1;
        }

        var written = new DirectorySink(sinkDir, device.Outbox).DrainOnce();
        Console.WriteLine($"{records.Count} signed record(s), {written} written to {sinkDir}");
        return 0;
    }
    catch (Exception ex) when (DeviceAgent.AgentFailures.IsExpected(ex))
    {
        await Console.Error.WriteLineAsync($"simulators: {ex.Message}").ConfigureAwait(false);
        return 2;
    }
});
root.Subcommands.Add(run);
var exitCode = await root.Parse(args).InvokeAsync().ConfigureAwait(false);
Logs.Factory.Dispose(); // flush the console logger's queue
return exitCode;

// Sends the outbox over MQTT like the agent does; a record leaves only on the service's stored-receipt.
static async Task<long> DeliverAsync(SimulatedDevice device, string broker, string? caFile, TimeSpan timeout, CancellationToken cancellationToken)
{
    var options = new BrokerOptions { Uri = new Uri(broker), CaFile = caFile, DeviceProofKey = device.Signer, MinBackoff = TimeSpan.FromMilliseconds(250) };
    var before = device.Outbox.Count;
    await using var delivery = new MqttDelivery(device.DeviceId, options, device.Outbox, TimeProvider.System, Logs.CreateLogger<MqttDelivery>());
    using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
    stop.CancelAfter(timeout);
    var running = delivery.RunAsync(stop.Token);
    while (device.Outbox.Count > 0 && !stop.IsCancellationRequested)
    {
        await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
    }

    await stop.CancelAsync().ConfigureAwait(false);
    await running.ConfigureAwait(false);
    return before - device.Outbox.Count;
}

/// <summary>The simulator's logs, as the agent writes them: console, one line each, on stderr (stdout is the run's report).</summary>
internal static class Logs
{
    public static ILoggerFactory Factory { get; } = LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Information)
        .AddSimpleConsole(c => c.SingleLine = true)
        .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));

    public static ILogger CreateLogger(string category) => Factory.CreateLogger(category);

    public static ILogger<T> CreateLogger<T>() => Factory.CreateLogger<T>();
}
