using System.Security.Cryptography;
using ShareVault.Evidence;
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
    public async Task Run_verb_writes_signed_evidence_that_verifies_under_the_device_pem()
    {
        var result = await Simulators("run", "--scenario", "home-flood", "--minutes", "35", "--sink", $"dir:{_sink}");

        Assert.True(result.ExitCode == 0, result.StdErr);
        using var deviceKey = ECDsa.Create();
        deviceKey.ImportFromPem(await File.ReadAllTextAsync(Path.Combine(_sink, "device.pem")));
        var files = Directory.GetFiles(_sink, "*.cose");
        // 36 scheduled polls (0..35 min) plus the leak event recorded when the probe got wet.
        Assert.Equal(37, files.Length);
        var records = files.Select(f => EvidenceVerifier.Verify(File.ReadAllBytes(f), _ => deviceKey))
            .Select(v => Assert.IsType<EvidenceRecord>(v.IsValid ? v.Record : throw new Xunit.Sdk.XunitException($"{v.Reason}: {v.Detail}")))
            .OrderBy(r => r.Sequence)
            .ToList();
        Assert.Equal(Enumerable.Range(1, 37).Select(i => (long)i), records.Select(r => r.Sequence));
        Assert.Contains(records, r => r.Readings.Any(x => x.Name == "water_leak" && x.Value == 1));
        Assert.Contains(records, r => r.Readings.Any(x => x.Name == "temperature"));
    }

    [Fact]
    public async Task Unknown_scenario_fails_with_a_message()
    {
        var result = await Simulators("run", "--scenario", "volcano", "--minutes", "1", "--sink", $"dir:{_sink}");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("No scenario named 'volcano'", result.StdErr, StringComparison.Ordinal);
    }
}
