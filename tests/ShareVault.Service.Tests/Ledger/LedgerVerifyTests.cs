using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Service.Tests.Ledger;

[Collection(PoolKeyGroup.Name)]
public sealed class LedgerVerifyTests(PoolKeyFixture key)
{
    private Task<string> ExportAfterAFloodAsync() =>
        ExportAfterAFloodAsync(new ClaimsOptions { CheckpointEvery = 8 }, device => device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12));

    /// <summary>A pool whose one device's records (<paramref name="records"/>) open and pay one claim, exported after a checkpoint.</summary>
    private async Task<string> ExportAfterAFloodAsync(ClaimsOptions options, Func<SimulatedDevice, List<byte[]>> records)
    {
        using var db = new ClaimsDatabase(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System, options);
        await using var device = new SimulatedDevice("pi-ledger-1");
        await IngestOverMqttTests.SetUpPoolAsync(engine, key.KeyName, device);
        await using var ingest = new EvidenceIngest(engine, (_, _, _) => Task.CompletedTask, TimeProvider.System);
        await ingest.ProcessBatchAsync([.. records(device).Select(r => new IncomingEvidence(ShareVault.Evidence.EvidenceTopics.Evidence(device.Id), r, device.Id))], default);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
        Assert.NotNull(await engine.CheckpointAsync("pool-1", force: true, default));
        return LedgerExport.ToText(engine.ExportLedger("pool-1"));
    }

    [Fact]
    public async Task An_export_whose_claim_evidence_steps_back_behind_its_predecessor_does_not_verify()
    {
        // A service run with a lax step back (an hour) stored a leak timed five minutes before the dry
        // record preceding it; under the default two seconds the export does not verify.
        var lax = new EvidenceTimeLimits { MaxStepBack = TimeSpan.FromHours(1) };
        var text = await ExportAfterAFloodAsync(new ClaimsOptions { EvidenceTime = lax }, device =>
        {
            var start = DateTimeOffset.UtcNow.AddMinutes(-30);
            var dry = device.Next(start, new Reading("water_leak", null, 0, start));
            return [dry, .. Enumerable.Range(0, 12).Select(i => device.Next(start.AddMinutes(i - 5), new Reading("water_leak", null, 1, start.AddMinutes(i - 5))))];
        });

        var verification = LedgerVerifier.Verify(text);

        Assert.False(verification.IsValid);
        Assert.Contains("evidence pi-ledger-1#1 is timed 300 s before #0, more than the 2 s a clock may step back", verification.Detail, StringComparison.Ordinal);
        Assert.True(LedgerVerifier.Verify(text, new LedgerVerifyOptions { EvidenceTime = lax }).IsValid);
    }

    [Fact]
    public async Task An_export_whose_claim_evidence_was_made_long_before_its_arrival_does_not_verify()
    {
        // A service that accepted records 30 days old paid from a leak of eight days ago.
        var lax = new EvidenceTimeLimits { MaxAge = TimeSpan.FromDays(30) };
        var text = await ExportAfterAFloodAsync(new ClaimsOptions { EvidenceTime = lax }, device => device.Leak(DateTimeOffset.UtcNow.AddDays(-8), wetMinutes: 12));

        var verification = LedgerVerifier.Verify(text);

        Assert.False(verification.IsValid);
        Assert.Matches(@"evidence pi-ledger-1#2: record time \S+ is outside \[\S+, \S+\] around its arrival", verification.Detail);
        Assert.True(LedgerVerifier.Verify(text, new LedgerVerifyOptions { EvidenceTime = lax }).IsValid);
    }

    [Fact]
    public async Task An_export_verifies_offline_with_its_payout_trigger_recomputed_from_evidence()
    {
        var text = await ExportAfterAFloodAsync();
        var verification = LedgerVerifier.Verify(text);
        Assert.True(verification.IsValid, verification.Detail);
        Assert.Equal(1, verification.Payouts);
        Assert.Equal(1, verification.Reevaluated);
        Assert.True(verification.Checkpoints >= 1);
    }

    [Fact]
    public async Task Ledger_verify_detects_a_flipped_byte_in_any_entry()
    {
        var text = await ExportAfterAFloodAsync();
        var bytes = Encoding.UTF8.GetBytes(text);
        var entries = JsonNode.Parse(text)!["entries"]!.AsArray();
        var start = text.IndexOf("\"entries\"", StringComparison.Ordinal);
        var random = new Random(42);
        for (var i = 0; i < entries.Count; i++)
        {
            // The byte span of entry i in the file: from its "seq" to its "hash" value's end.
            var entryStart = text.IndexOf("\"seq\": " + (i + 1) + ",", start, StringComparison.Ordinal);
            var hashKey = text.IndexOf("\"hash\"", entryStart, StringComparison.Ordinal);
            var entryEnd = text.IndexOf('"', hashKey + 10) + 1;
            Assert.True(entryStart > 0 && entryEnd > entryStart);
            for (var trial = 0; trial < 3; trial++)
            {
                var position = random.Next(Encoding.UTF8.GetByteCount(text[..entryStart]), Encoding.UTF8.GetByteCount(text[..entryEnd]));
                var tampered = (byte[])bytes.Clone();
                tampered[position] ^= 0x01;
                var verification = LedgerVerifier.Verify(Encoding.UTF8.GetString(tampered));
                Assert.False(verification.IsValid, $"flip at byte {position} of entry {i + 1} went unnoticed");
            }

            start = entryEnd;
        }
    }

    [Fact]
    public async Task A_payout_decided_across_a_skipped_gap_still_verifies_after_the_missing_record_arrives_late()
    {
        using var db = new ClaimsDatabase(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System, new ClaimsOptions { GapTimeout = TimeSpan.Zero });
        await using var device = new SimulatedDevice("pi-ledger-gap");
        await IngestOverMqttTests.SetUpPoolAsync(engine, key.KeyName, device);
        await using var ingest = new EvidenceIngest(engine, (_, _, _) => Task.CompletedTask, TimeProvider.System);
        var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 14);
        IncomingEvidence Message(byte[] r) => new(ShareVault.Evidence.EvidenceTopics.Evidence(device.Id), r, device.Id);

        // Record 6 is late: evaluation moves past it (the gap timed out), the claim is decided without it…
        await ingest.ProcessBatchAsync([.. records.Where((_, i) => i != 6).Select(Message)], default);
        var claim = Assert.Single(engine.ListClaims());
        Assert.DoesNotContain(6L, claim.Evidence.Select(e => e!["seq"]!.GetValue<long>()));
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));

        // …and then it arrives: stored, never evaluated. The export must still show the decision the service made.
        await ingest.ProcessBatchAsync([Message(records[6])], default);
        Assert.NotNull(engine.EvidenceRecord(device.Id, 6));
        Assert.NotNull(await engine.CheckpointAsync("pool-1", force: true, default));
        var verification = LedgerVerifier.Verify(LedgerExport.ToText(engine.ExportLedger("pool-1")));
        Assert.True(verification.IsValid, verification.Detail);
        Assert.Equal(1, verification.Reevaluated);
    }

    [Fact]
    public async Task A_payout_whose_evidence_was_swapped_fails_re_evaluation()
    {
        var export = JsonNode.Parse(await ExportAfterAFloodAsync())!.AsObject();
        var evidence = export["evidence"]!.AsArray();
        (evidence[0]!["cose"], evidence[1]!["cose"]) = (evidence[1]!["cose"]!.DeepClone(), evidence[0]!["cose"]!.DeepClone());
        var verification = LedgerVerifier.Verify(export.ToJsonString());
        Assert.False(verification.IsValid);
        Assert.Contains("evidence", verification.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cli_verifies_an_export_and_refuses_a_tampered_one()
    {
        var text = await ExportAfterAFloodAsync();
        var good = Path.Combine(key.DataDir, $"ledger-{Guid.NewGuid():N}.json");
        var bad = good + ".bad.json";
        await File.WriteAllTextAsync(good, text);
        await File.WriteAllTextAsync(bad, text.Replace("\"amount\": 25000", "\"amount\": 95000", StringComparison.Ordinal));
        var dll = typeof(ShareVault.Cli.CliContext).Assembly.Location;
        var ok = await ShareVault.TestSupport.ProcessRunner.RunAsync("dotnet", [dll, "ledger", "verify", "--in", good]);
        Assert.True(ok.ExitCode == 0, ok.StdErr);
        Assert.StartsWith("valid:", ok.StdOut, StringComparison.Ordinal);
        var refused = await ShareVault.TestSupport.ProcessRunner.RunAsync("dotnet", [dll, "ledger", "verify", "--in", bad]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("invalid ledger", refused.StdErr, StringComparison.Ordinal);
    }
}
