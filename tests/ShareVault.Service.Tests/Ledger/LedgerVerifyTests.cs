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
        Assert.NotNull(await engine.CheckpointAsync("pool-1", force: true, default)); // one before the payout, one at the head
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
        // The claim names the record before its first, with its stored hash, so an export must carry it.
        var first = claim.Evidence[0]!["seq"]!.GetValue<long>();
        var opened = engine.LedgerEntries("pool-1").Single(e => e.Kind == LedgerEntry.ClaimOpened);
        Assert.Equal(first - 1, opened.Body[ClaimPredecessor.Field]!["seq"]!.GetValue<long>());
        Assert.Equal(Convert.ToHexStringLower(engine.EvidenceRecord(device.Id, first - 1)!.Hash), opened.Body[ClaimPredecessor.Field]!["sha256"]!.GetValue<string>());
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
    public async Task A_claim_whose_first_record_follows_a_skipped_gap_names_no_predecessor_and_verifies_after_the_late_record_arrives()
    {
        using var db = new ClaimsDatabase(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System, new ClaimsOptions { GapTimeout = TimeSpan.Zero });
        await using var device = new SimulatedDevice("pi-ledger-gap-first");
        await IngestOverMqttTests.SetUpPoolAsync(engine, key.KeyName, device);
        await using var ingest = new EvidenceIngest(engine, (_, _, _) => Task.CompletedTask, TimeProvider.System);
        var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 14);
        IncomingEvidence Message(byte[] r) => new(ShareVault.Evidence.EvidenceTopics.Evidence(device.Id), r, device.Id);
        // Every record but #1, the one before the first wet one (#2): the claim starts right after a gap the service moved past.
        await ingest.ProcessBatchAsync([.. records.Where((_, i) => i != 1).Select(Message)], default);
        var claim = Assert.Single(engine.ListClaims());
        Assert.Equal(2L, claim.Evidence[0]!["seq"]!.GetValue<long>());
        var opened = engine.LedgerEntries("pool-1").Single(e => e.Kind == LedgerEntry.ClaimOpened);
        Assert.True(opened.Body.ContainsKey(ClaimPredecessor.Field));
        Assert.Null(opened.Body[ClaimPredecessor.Field]);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));

        await ingest.ProcessBatchAsync([Message(records[1])], default);
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

    [Fact]
    public async Task Every_leaf_and_key_of_an_export_changed_once_and_every_section_dropped_is_rejected_or_shown_harmless()
    {
        var original = JsonNode.Parse(await ExportAfterAFloodAsync())!.AsObject();
        Assert.True(LedgerVerifier.Verify(original.ToJsonString()).IsValid);
        var checkpoints = original["checkpoints"]!.AsArray().Count;
        Assert.True(checkpoints > 1, "the flood's ledger has several checkpoints (one every 8 entries)");

        var accepted = new List<string>();
        var tried = 0;
        foreach (var (description, change) in Tampering.All(original))
        {
            var copy = original.DeepClone().AsObject();
            change(copy);
            var verification = LedgerVerifier.Verify(copy.ToJsonString()); // never throws: untrusted input gets a reason
            Assert.DoesNotContain("Object reference", verification.Detail, StringComparison.Ordinal);
            tried++;
            if (verification.IsValid)
            {
                accepted.Add(description);
            }
        }

        Assert.True(tried > 500, $"only {tried} changes tried");

        // What still verifies, and why it is harmless: a checkpoint other than the last dropped. The last
        // one signs the head's hash, which commits to every entry before it through the chain, so the
        // earlier signatures add nothing the export relies on. (Dropping the record before the claim's
        // first is refused: the claim_opened entry names it in preceded_by, so it cannot pass for a gap.)
        var predecessor = original["evidence"]!.AsArray().Select((e, i) => (e, i)).Single(x => x.e!["seq"]!.GetValue<long>() == FirstClaimSeq(original) - 1).i;
        Assert.DoesNotContain($"drop $.evidence[{predecessor}]", accepted);
        var harmless = Enumerable.Range(0, checkpoints - 1).Select(i => $"drop $.checkpoints[{i}]");
        Assert.Equal(harmless.Order(StringComparer.Ordinal), accepted.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_export_without_checkpoints_or_with_entries_after_the_last_is_refused_unless_an_unsigned_tail_is_accepted()
    {
        var export = JsonNode.Parse(await ExportAfterAFloodAsync())!.AsObject();
        var entries = export["entries"]!.AsArray().Count;
        var last = export["checkpoints"]!.AsArray()[^1]!.AsObject();
        Assert.Equal(entries, last["seq"]!.GetValue<long>());

        export["checkpoints"]!.AsArray().RemoveAt(export["checkpoints"]!.AsArray().Count - 1);
        var signedThrough = export["checkpoints"]!.AsArray()[^1]!["seq"]!.GetValue<long>();
        var tail = LedgerVerifier.Verify(export.ToJsonString());
        Assert.False(tail.IsValid);
        Assert.StartsWith($"entries {signedThrough + 1}-{entries} follow the last checkpoint (at {signedThrough}) and are not threshold-signed", tail.Detail, StringComparison.Ordinal);
        var accepted = LedgerVerifier.Verify(export.ToJsonString(), new LedgerVerifyOptions { AcceptUnsignedTail = true });
        Assert.True(accepted.IsValid, accepted.Detail);
        Assert.Equal(entries - signedThrough, accepted.UnsignedEntries);
        Assert.Contains("UNSIGNED", accepted.Detail, StringComparison.Ordinal);

        export["checkpoints"] = new JsonArray();
        Assert.Contains("(there is none)", LedgerVerifier.Verify(export.ToJsonString()).Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("$.pool", "$.pool is missing or not an object")]
    [InlineData("$.entries[2].body", "$.entries[2]: malformed ledger entry: $.entries[2].body is missing or not an object")]
    [InlineData("$.devices[0].public_key", "$.devices[0].public_key is missing or not a string")]
    [InlineData("$.evidence[0].cose", "$.evidence[0].cose is missing or not a string")]
    [InlineData("$.checkpoints[0].jws", "$.checkpoints[0].jws is missing or not a string")]
    public async Task A_malformed_export_is_refused_with_the_json_path_of_what_is_wrong(string path, string detail)
    {
        var export = JsonNode.Parse(await ExportAfterAFloodAsync())!.AsObject();
        var (parent, key) = Tampering.Locate(export, path);
        parent[key] = 42;
        var verification = LedgerVerifier.Verify(export.ToJsonString());
        Assert.False(verification.IsValid);
        Assert.EndsWith(detail, verification.Detail, StringComparison.Ordinal);
    }

    private static long FirstClaimSeq(JsonObject export) =>
        export["entries"]!.AsArray().Single(e => e!["kind"]!.GetValue<string>() == LedgerEntry.ClaimOpened)!["body"]!["evidence"]![0]!["seq"]!.GetValue<long>();

    /// <summary>One change at a time to an export: every leaf altered, every object key renamed, every member and element dropped.</summary>
    private static class Tampering
    {
        public static IEnumerable<(string Description, Action<JsonObject> Change)> All(JsonObject export)
        {
            var found = new List<(string, Action<JsonObject>)>();
            Walk(export, "$", found);
            return found;
        }

        /// <summary>The object holding the member a path like <c>$.a[1].b</c> names, and that member's key.</summary>
        public static (JsonObject Parent, string Key) Locate(JsonObject root, string path)
        {
            var steps = System.Text.RegularExpressions.Regex.Matches(path, @"\.([A-Za-z_]+)|\[(\d+)\]").Select(m => m.Groups[1].Success ? (object)m.Groups[1].Value : int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            JsonNode node = root;
            foreach (var step in steps[..^1])
            {
                node = step is string k ? node[k]! : node[(int)step]!;
            }

            return (node.AsObject(), (string)steps[^1]);
        }

        private static void Walk(JsonNode node, string path, List<(string, Action<JsonObject>)> found)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (key, child) in o.ToList())
                    {
                        var at = $"{path}.{key}";
                        found.Add(($"rename {at}", root => Rename(Resolve(root, path).AsObject(), key)));
                        found.Add(($"drop {at}", root => Resolve(root, path).AsObject().Remove(key)));
                        if (child is null)
                        {
                            found.Add(($"change {at}", root => Resolve(root, path).AsObject()[key] = "x"));
                        }
                        else
                        {
                            Walk(child, at, found);
                        }
                    }

                    break;
                case JsonArray a:
                    for (var i = 0; i < a.Count; i++)
                    {
                        var index = i;
                        found.Add(($"drop {path}[{i}]", root => Resolve(root, path).AsArray().RemoveAt(index)));
                        Walk(a[i]!, $"{path}[{i}]", found);
                    }

                    break;
                case JsonValue:
                    found.Add(($"change {path}", root => Replace(root, path)));
                    break;
            }
        }

        private static JsonNode Resolve(JsonObject root, string path)
        {
            if (path == "$")
            {
                return root;
            }

            var (parent, key) = LocateAny(root, path);
            return key is string k ? parent[k]! : parent[(int)key]!;
        }

        private static (JsonNode Parent, object Key) LocateAny(JsonObject root, string path)
        {
            var steps = System.Text.RegularExpressions.Regex.Matches(path, @"\.([A-Za-z0-9_]+)|\[(\d+)\]").Select(m => m.Groups[1].Success ? (object)m.Groups[1].Value : int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            JsonNode node = root;
            foreach (var step in steps[..^1])
            {
                node = step is string k ? node[k]! : node[(int)step]!;
            }

            return (node, steps[^1]);
        }

        private static void Replace(JsonObject root, string path)
        {
            var (parent, key) = LocateAny(root, path);
            var value = (key is string k ? parent[k] : parent[(int)key])!.AsValue();
            JsonNode changed = value.GetValueKind() switch
            {
                System.Text.Json.JsonValueKind.String when value.GetValue<string>() is var s => s.Length == 0 ? "x" : (s[0] == 'A' ? 'B' : 'A') + s[1..],
                System.Text.Json.JsonValueKind.Number when value.TryGetValue<long>(out var n) => n + 1,
                System.Text.Json.JsonValueKind.Number => value.GetValue<double>() + 0.5,
                System.Text.Json.JsonValueKind.True => false,
                System.Text.Json.JsonValueKind.False => true,
                _ => "x",
            };
            if (key is string name)
            {
                parent.AsObject()[name] = changed;
            }
            else
            {
                parent.AsArray()[(int)key] = changed;
            }
        }

        private static void Rename(JsonObject o, string key)
        {
            // Renamed in place (order kept), so only the key changes.
            var members = o.ToList();
            o.Clear();
            foreach (var (k, v) in members)
            {
                o[k == key ? k + "_" : k] = v;
            }
        }
    }
}
