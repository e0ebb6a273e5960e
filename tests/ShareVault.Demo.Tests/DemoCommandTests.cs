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
    public async Task Demo_pays_the_flooded_home_by_its_rule_and_by_its_neighbours_votes_and_leaves_artefacts_a_sceptic_can_verify()
    {
        var first = await RunDemoAsync();
        var second = await RunDemoAsync();

        Assert.True(first.ExitCode == 0, first.StdOut + first.StdErr);
        Assert.True(second.ExitCode == 0, "second run (idempotent): " + second.StdOut + second.StdErr);
        Assert.EndsWith($"artefacts: {_out}", first.StdOut.TrimEnd(), StringComparison.Ordinal);

        // Two payouts, both to the flooded home (its leak cover by the rule, its repair cover by votes);
        // each verifies against jwks.json with plain .NET RSA.
        var payouts = Directory.GetFiles(Path.Combine(_out, "payouts"), "*.jws");
        Assert.Equal(2, payouts.Length);
        var jwks = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_out, "jwks.json")))!["keys"]!.AsArray();
        var kids = new List<string>();
        foreach (var payout in payouts)
        {
            Assert.True(Jws.TryParse(await File.ReadAllTextAsync(payout), out var jws));
            kids.Add(jws.Kid!);
            var jwk = jwks.Single(k => k!["kid"]!.GetValue<string>() == jws.Kid)!;
            Assert.True(Jws.Verify(jws, RsaPublicKey.FromJwk(jwk)));
            var instruction = JsonNode.Parse(jws.Payload)!;
            Assert.Contains("household-flood", instruction.ToJsonString(), StringComparison.Ordinal);
            Assert.DoesNotContain("household-quiet", instruction.ToJsonString(), StringComparison.Ordinal);
        }

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
        Assert.Equal(2, ledger.Payouts);
        Assert.Equal(2, ledger.Reevaluated);
        Assert.True(File.Exists(Path.Combine(_out, "VERIFY.md")));

        // The repair claim was decided by the two neighbours' votes, each signed by the key file the member recorded when joining.
        var export = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_out, "ledger.json")))!;
        var entries = export["entries"]!.AsArray().Select(e => e!.AsObject()).ToList();
        var decision = Assert.Single(entries, e => e["kind"]!.GetValue<string>() == LedgerEntry.Decision && e["body"]!["by"]!.GetValue<string>() == "votes");
        var voters = decision["body"]!["votes"]!.AsArray().Select(seq => entries.Single(e => e["seq"]!.GetValue<long>() == seq!.GetValue<long>())).ToList();
        Assert.Equal(["household-north", "household-south"], voters.Select(v => v["body"]!["member"]!.GetValue<string>()).Order());
        foreach (var vote in voters)
        {
            var member = vote["body"]!["member"]!.GetValue<string>();
            var key = MemberKey.FromPem(await File.ReadAllTextAsync(Path.Combine(_out, "members", member + ".pem")));
            Assert.Equal(LedgerEntry.Vote, vote["kind"]!.GetValue<string>());
            Assert.Equal(MemberCheck.Valid, MemberSignature.Verify("pool-1", LedgerEntry.Vote, vote["body"]!.AsObject(), key));
        }

        // On chain: both premiums came from deposits, the payout was settled to the flooded home's address, the checkpoint anchored.
        var chain = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_out, "chain.json")))!;
        Assert.Equal(2, entries.Count(e => e["kind"]!.GetValue<string>() == LedgerEntry.Premium && e["body"]!["ref"]!.GetValue<string>().StartsWith("eip155:31337:0x", StringComparison.Ordinal)));
        // Both payouts (the rule's and the votes') were settled on chain to the flooded home's address, in that order.
        var settled = entries.Where(e => e["kind"]!.GetValue<string>() == LedgerEntry.PayoutSettled).Select(e => e["body"]!).ToList();
        Assert.Equal(["250000000", "150000000"], settled.Select(b => b["amount"]!.GetValue<string>()));
        Assert.All(settled, b => Assert.Equal(chain["members"]!["household-flood"]!.GetValue<string>(), b["to"]!.GetValue<string>()));
        Assert.Equal(chain["payouts"]!.AsArray().Select(p => p!["tx"]!.GetValue<string>()), settled.Select(b => b["tx"]!.GetValue<string>()));
        Assert.Contains(export["checkpoints"]!.AsArray(), c => chain["anchors"]!.AsArray().Any(a => a!["payload"]!.GetValue<string>().Contains(c!["hash"]!.GetValue<string>(), StringComparison.Ordinal)));
        Assert.Contains("2 PaidOut", first.StdOut, StringComparison.Ordinal);

        // The claims service signed through custody nodes only: its key record names node URIs and no PIN source…
        var record = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(_out, "data", "keys", "pool-1.json")))!;
        var uris = record["custodians"]!.AsArray().Select(c => c!["uri"]!.GetValue<string>()).ToList();
        Assert.Equal(3, uris.Count);
        Assert.All(uris, u => Assert.StartsWith("https://127.0.0.1:", u, StringComparison.Ordinal));
        Assert.All(uris, u => Assert.DoesNotContain("pin-source", u, StringComparison.Ordinal));

        // …and each node's audit log (copied to audit/) verifies and records what it signed, across both runs:
        // the payout by two nodes, every checkpoint by custody-a and the TPM node.
        var signed = new Dictionary<string, (int Payouts, int Checkpoints)>();
        foreach (var custodian in new[] { "custody-a", "custody-b", "custody-t" })
        {
            var text = await File.ReadAllTextAsync(Path.Combine(_out, "audit", custodian + ".jsonl"));
            var check = ShareVault.Node.Audit.AuditLog.Verify(text);
            Assert.True(check.BrokenLine is null, $"{custodian}: {check.Reason}");
            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
            Assert.DoesNotContain(lines, l => l["outcome"]!["result"]!.GetValue<string>() == "refused");
            int Count(string purpose) => lines.Count(l => l["op"]!.GetValue<string>() == "sign" && l["request"]!["purpose"]?.GetValue<string>() == purpose
                && l["outcome"]!["result"]!.GetValue<string>() == "signed");
            signed[custodian] = (Count("payout"), Count("checkpoint"));
        }

        var payers = kids.SelectMany(kid => kid.Split('/')[1].Split('+')).Distinct();
        Assert.All(payers, p => Assert.True(signed[p].Payouts >= 1, $"{p} signed no payout: {string.Join(", ", signed)}"));
        Assert.True(signed.Values.Sum(v => v.Payouts) >= 8, $"two runs, two payouts each, two signers each: {string.Join(", ", signed)}");
        Assert.True(signed["custody-a"].Checkpoints >= 2 && signed["custody-t"].Checkpoints >= 2, string.Join(", ", signed));
        Assert.Equal(0, signed["custody-b"].Checkpoints); // checkpoints go to the quorum with the TPM only
        Assert.DoesNotContain(System.Diagnostics.Process.GetProcesses(), IsDemoNode); // no node outlives the demo
    }

    private bool IsDemoNode(System.Diagnostics.Process process)
    {
        try
        {
            return File.ReadAllText($"/proc/{process.Id}/cmdline").Contains(Path.Combine(_out, "nodes"), StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private Task<ProcessRunner.Result> RunDemoAsync() =>
        ProcessRunner.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "sharevault-demo.dll"), "--out", _out], TimeSpan.FromMinutes(5),
            new Dictionary<string, string> { ["CI"] = "true" });

    public void Dispose() => Directory.Delete(_out, recursive: true);
}
