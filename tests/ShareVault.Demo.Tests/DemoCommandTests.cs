using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.TestSupport;

namespace ShareVault.Demo.Tests;

/// <summary>The README's main job, run the way CI runs it (no terminal, CI=true), judged by its artefacts alone.</summary>
public sealed class DemoCommandTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("sv-demo-").FullName;

    [Fact]
    public async Task Demo_pays_the_flooded_home_once_and_leaves_artefacts_a_sceptic_can_verify()
    {
        var first = await RunDemoAsync();
        var second = await RunDemoAsync();

        Assert.True(first.ExitCode == 0, first.StdOut + first.StdErr);
        Assert.True(second.ExitCode == 0, "second run (idempotent): " + second.StdOut + second.StdErr);
        Assert.EndsWith($"artefacts: {_out}", first.StdOut.TrimEnd(), StringComparison.Ordinal);

        // Exactly one payout, and it verifies against jwks.json with plain .NET RSA.
        var payout = Assert.Single(Directory.GetFiles(Path.Combine(_out, "payouts"), "*.jws"));
        var jwks = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_out, "jwks.json")))!["keys"]!.AsArray();
        Assert.True(Jws.TryParse(await File.ReadAllTextAsync(payout), out var jws));
        var jwk = jwks.Single(k => k!["kid"]!.GetValue<string>() == jws.Kid)!;
        Assert.True(Jws.Verify(jws, RsaPublicKey.FromJwk(jwk)));
        var instruction = JsonNode.Parse(jws.Payload)!;
        Assert.Contains("household-flood", instruction.ToJsonString(), StringComparison.Ordinal);
        Assert.DoesNotContain("household-quiet", instruction.ToJsonString(), StringComparison.Ordinal);

        // Every evidence file verifies under its device's PEM, with no gap in sequence numbers.
        foreach (var device in new[] { "kit-flood", "kit-quiet" })
        {
            using var key = ECDsa.Create();
            key.ImportFromPem(await File.ReadAllTextAsync(Path.Combine(_out, "devices", device + ".pem")));
            var files = Directory.GetFiles(Path.Combine(_out, "evidence", device), "*.cose");
            Assert.True(files.Length > 100, $"{device}: {files.Length} evidence files");
            var sequences = files.Select(f =>
            {
                var check = EvidenceVerifier.Verify(File.ReadAllBytes(f), id => id == device ? key : null);
                Assert.True(check.IsValid, $"{f}: {check.Reason} {check.Detail}");
                return check.Record!.Sequence;
            }).Order().ToList();
            Assert.Equal(Enumerable.Range((int)sequences[0], sequences.Count).Select(i => (long)i), sequences);
        }

        // The ledger export verifies offline, including re-evaluating the payout's trigger.
        var ledger = LedgerVerifier.Verify(await File.ReadAllTextAsync(Path.Combine(_out, "ledger.json")));
        Assert.True(ledger.IsValid, ledger.Detail);
        Assert.Equal(1, ledger.Payouts);
        Assert.Equal(1, ledger.Reevaluated);
        Assert.True(File.Exists(Path.Combine(_out, "VERIFY.md")));
    }

    private Task<ProcessRunner.Result> RunDemoAsync() =>
        ProcessRunner.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "sharevault-demo.dll"), "--out", _out], TimeSpan.FromMinutes(5),
            new Dictionary<string, string> { ["CI"] = "true" });

    public void Dispose() => Directory.Delete(_out, recursive: true);
}
