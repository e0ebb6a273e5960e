using System.CommandLine;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using DeviceAgent.Configuration;
using DeviceAgent.Keys;
using Microsoft.Extensions.Logging;
using ShareVault.Evidence;
using ShareVault.Hardware;

var root = new RootCommand("device-agent: reads sensors, signs evidence with a hardware key, delivers it over MQTT");
root.Subcommands.Add(RunCommand());
root.Subcommands.Add(KeyCommand());
root.Subcommands.Add(VerifyCommand());
var exitCode = await root.Parse(args).InvokeAsync().ConfigureAwait(false);
Cli.Logging.Dispose(); // the console logger writes from a queue: flush it before the process ends
return exitCode;

static Command RunCommand()
{
    var config = new Option<string>("--config") { Description = "JSON configuration file", Required = true };
    var sink = new Option<string?>("--sink") { Description = "Override the sink: mqtt or dir:PATH (writes <seq>.cose files)" };
    var command = new Command("run", "Read sensors on a schedule and on events, sign and deliver evidence") { config, sink };
    command.SetAction((result, cancellationToken) => Cli.RunAsync(async () =>
    {
        var loaded = AgentConfig.Load(result.GetValue(config)!);
        if (result.GetValue(sink) is { } overrideSink)
        {
            loaded = loaded with { Sink = AgentSink.Parse(overrideSink) };
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        await DeviceAgent.AgentHost.RunAsync(loaded, SensorRegistry.Default, TimeProvider.System, Cli.Logging, stop.Token).ConfigureAwait(false);
        return 0;
    }));
    return command;
}

static Command KeyCommand()
{
    var key = new Command("key", "Create the device key and export its public part for enrolment");
    key.Subcommands.Add(KeyVerb("create", "Create the device key (inside the token for pkcs11:) and print its public key", create: true));
    key.Subcommands.Add(KeyVerb("public", "Print the device key's public key", create: false));
    return key;
}

static Command KeyVerb(string name, string description, bool create)
{
    var uri = new Option<string>("--key") { Description = "pkcs11:token=T;object=LABEL?module-path=…&pin-source=file:PATH, tpm:…, or file:PATH", Required = true };
    var allowSoftware = new Option<bool>("--allow-software-key") { Description = "Permit a file: software key (not hardware-protected)" };
    var format = new Option<string>("--format") { Description = "pem (SubjectPublicKeyInfo) or jwk", DefaultValueFactory = _ => "pem" };
    format.AcceptOnlyFromAmong("pem", "jwk");
    var deviceId = new Option<string?>("--device-id") { Description = "Device id, written as the JWK kid" };
    var command = new Command(name, description) { uri, allowSoftware, format, deviceId };
    command.SetAction((result, cancellationToken) => Cli.RunAsync(() =>
    {
        var id = result.GetValue(deviceId);
        if (id is not null && !Identifier.IsValid(id))
        {
            throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]");
        }

        using var opened = create
            ? DeviceKey.Create(result.GetValue(uri)!, result.GetValue(allowSoftware))
            : DeviceKey.Open(result.GetValue(uri)!, result.GetValue(allowSoftware));
        Console.Write(result.GetValue(format) == "jwk" ? opened.PublicJwk(id) : opened.PublicPem());
        return Task.FromResult(0);
    }));
    return command;
}

static Command VerifyCommand()
{
    var publicKey = new Option<string>("--public-key") { Description = "The device's public key (PEM)", Required = true };
    var files = new Argument<string[]>("files") { Description = "COSE_Sign1 evidence files (<seq>.cose)", Arity = ArgumentArity.OneOrMore };
    var command = new Command("verify", "Verify evidence files offline and check their hash chain") { publicKey, files };
    command.SetAction((result, cancellationToken) => Cli.RunAsync(() =>
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(result.GetValue(publicKey)!));
        var failures = 0;
        byte[]? previous = null;
        long? previousSeq = null;
        foreach (var file in result.GetValue(files)!.OrderBy(f => long.TryParse(Path.GetFileNameWithoutExtension(f), out var n) ? n : long.MaxValue))
        {
            var cose = File.ReadAllBytes(file);
            var verification = EvidenceVerifier.Verify(cose, _ => key);
            var chain = verification.Record is { } record && previous is not null && record.Sequence == previousSeq + 1
                ? (record.Follows(previous) ? ", chain ok" : ", CHAIN BROKEN")
                : string.Empty;
            Console.WriteLine($"{file}: {verification}{chain}");
            failures += verification.IsValid && !chain.Contains("BROKEN", StringComparison.Ordinal) ? 0 : 1;
            previous = cose;
            previousSeq = verification.Record?.Sequence;
        }

        return Task.FromResult(failures == 0 ? 0 : 1);
    }));
    return command;
}

internal static class Cli
{
    /// <summary>sysexits.h EX_SOFTWARE: an internal error (a bug), not a failure of the world the agent runs in.</summary>
    public const int Bug = 70;

    /// <summary>
    /// The agent's logs: console, one line per entry, all on stderr (stdout stays what <c>key</c> and
    /// <c>verify</c> print for scripts), structured, information and up. Messages carry ids, sequence
    /// numbers and reasons, never a PIN, a key or an evidence payload.
    /// </summary>
    public static ILoggerFactory Logging { get; } = LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Information)
        .AddSimpleConsole(c =>
        {
            c.SingleLine = true;
            c.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            c.UseUtcTimestamp = true;
        })
        .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));

    /// <summary>
    /// The command boundary: an expected failure (<see cref="DeviceAgent.AgentFailures.IsExpected"/>) prints
    /// "device-agent: reason" on stderr and exits 1; anything else is a bug, logged with its exception, exit <see cref="Bug"/>.
    /// </summary>
    public static async Task<int> RunAsync(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception e) when (DeviceAgent.AgentFailures.IsExpected(e))
        {
            await Console.Error.WriteLineAsync("device-agent: " + e.Message).ConfigureAwait(false);
            return 1;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Logging.CreateLogger("device-agent").LogCritical(e, "device-agent failed unexpectedly (a bug; please report it with this log)");
            return Bug;
        }
    }
}
