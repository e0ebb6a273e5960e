using System.Security.Cryptography;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;
using ShareVault.Evidence;
using ShareVault.TestSupport;

namespace DeviceAgent.Tests;

/// <summary>The real <c>device-agent</c> executable, run as a process.</summary>
public sealed class CommandLineTests
{
    private static readonly string AgentDll = Path.Combine(AppContext.BaseDirectory, "device-agent.dll");

    private static Task<ProcessRunner.Result> Agent(params string[] args) => ProcessRunner.RunAsync("dotnet", [AgentDll, .. args], TimeSpan.FromSeconds(60));

    [Fact]
    public async Task Key_create_and_public_print_the_same_key_as_pem_and_jwk()
    {
        using var dir = new TempDir();
        var uri = "file:" + dir.Sub("device.pem");

        var refused = await Agent("key", "create", "--key", uri);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("explicitly allowed", refused.StdErr, StringComparison.Ordinal);

        var created = await Agent("key", "create", "--key", uri, "--allow-software-key");
        Assert.Equal(0, created.ExitCode);
        Assert.StartsWith("-----BEGIN PUBLIC KEY-----", created.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE", created.StdOut, StringComparison.Ordinal);

        var pem = await Agent("key", "public", "--key", uri, "--allow-software-key");
        Assert.Equal(created.StdOut, pem.StdOut);
        var jwk = await Agent("key", "public", "--key", uri, "--allow-software-key", "--format", "jwk", "--device-id", "pi-9");
        Assert.Contains("\"kid\": \"pi-9\"", jwk.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("\"d\"", jwk.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_with_a_directory_sink_writes_verifiable_chained_records()
    {
        using var dir = new TempDir();
        var keyUri = "file:" + dir.Sub("device.pem");
        var pem = (await Agent("key", "create", "--key", keyUri, "--allow-software-key")).StdOut;
        File.WriteAllText(dir.Sub("device.pub.pem"), pem);
        var config = dir.Sub("agent.json");
        File.WriteAllText(config, $$"""
            {
              // comments are allowed
              "deviceId": "pi-cli-1",
              "key": "{{keyUri}}",
              "allowSoftwareKey": true,
              "dataDir": "{{dir.Sub("data")}}",
              "pollSeconds": 0.2,
              "sink": "mqtt",
              "sensors": []
            }
            """);

        // SIGTERM once three records are out (not after a fixed time: a loaded machine can spend that
        // starting dotnet): the agent drains and exits 0.
        using var agent = ChildProcess.Start("device-agent", "dotnet", [AgentDll, "run", "--config", config, "--sink", "dir:" + dir.Sub("evidence")]);
        var evidence = dir.Sub("evidence");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((!Directory.Exists(evidence) || Directory.GetFiles(evidence, "*.cose").Length < 3) && !agent.HasExited)
        {
            Assert.True(DateTime.UtcNow < deadline, $"fewer than 3 records within 60 s: {agent.Output}");
            await Task.Delay(50);
        }

        agent.Signal(ChildProcess.SigTerm);
        var exit = await agent.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, $"exit {exit}: {agent.StdErr}");
        Assert.Empty(Outbox.Inspect(dir.Sub(Path.Combine("data", "outbox"))));
        Assert.Contains("SOFTWARE key", agent.StdErr, StringComparison.Ordinal);

        var files = Directory.GetFiles(dir.Sub("evidence"), "*.cose");
        Assert.True(files.Length >= 3, $"{files.Length} record(s) written");
        using var key = ECDsa.Create();
        key.ImportFromPem(pem);
        foreach (var file in files)
        {
            var result = EvidenceVerifier.Verify(File.ReadAllBytes(file), id => id == "pi-cli-1" ? key : null);
            Assert.True(result.IsValid, result.ToString());
            Assert.Equal(Path.GetFileNameWithoutExtension(file), result.Record!.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var verify = await Agent(["verify", "--public-key", dir.Sub("device.pub.pem"), .. files]);
        Assert.Equal(0, verify.ExitCode);
        Assert.Contains("chain ok", verify.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("BROKEN", verify.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_refuses_a_config_with_an_unknown_field_or_sensor()
    {
        using var dir = new TempDir();
        var config = dir.Sub("agent.json");
        File.WriteAllText(config, """{"deviceId":"pi-1","key":"file:/nonexistent","allowSoftwareKey":true,"pollSecs":5}""");
        var typo = await Agent("run", "--config", config);
        Assert.Equal(1, typo.ExitCode);
        Assert.Contains("pollSecs", typo.StdErr, StringComparison.Ordinal);

        var keyUri = "file:" + dir.Sub("device.pem");
        await Agent("key", "create", "--key", keyUri, "--allow-software-key");
        File.WriteAllText(config, $$"""{"deviceId":"pi-1","key":"{{keyUri}}","allowSoftwareKey":true,"dataDir":"{{dir.Sub("data")}}","sink":"dir:{{dir.Sub("out")}}","sensors":[{"type":"no-such-chip"}]}""");
        var unknown = await Agent("run", "--config", config);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no-such-chip", unknown.StdErr, StringComparison.Ordinal);
    }
}
