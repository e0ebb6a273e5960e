using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Node.Guard;

namespace ShareVault.Node.Tests.Guard;

/// <summary>
/// The guard against real ledgers made by the real claims engine (SQLite, real COSE evidence, a real
/// pool key in SoftHSM), then against the same requests tampered with as a malicious coordinator would.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class SigningGuardTests(PoolKeyFixture key)
{
    private const string FloodRule = "water_leak == 1 for 10m";

    [Fact]
    public void The_head_of_a_pool_the_node_has_never_seen_is_sequence_zero_and_the_genesis_hash()
    {
        var dir = Path.Combine(key.DataDir, "node-" + Guid.NewGuid().ToString("N")[..10]);
        using var guard = new SigningGuard(new GuardOptions(dir, [], 50_000, 100_000, false, TimeProvider.System));
        Assert.Equal(new LedgerHead(0, LedgerEntry.Genesis), guard.Head("pool-unknown"));
    }

    [Fact]
    public async Task A_justified_payout_is_allowed_signed_and_verifies_under_the_pool_jwks()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();

        Assert.Equal(1, await pool.Engine.ProcessPayoutsAsync(default));

        var decision = Assert.Single(pool.Signer.Decisions);
        Assert.True(decision.Allowed, decision.Detail);
        var payout = Assert.Single(pool.Engine.ListPayouts());
        Assert.True(Jws.TryParse(payout.Jws, out var jws));
        var jwk = pool.Engine.Signer.Jwks(key.KeyName)["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == jws.Kid);
        Assert.True(Jws.Verify(jws, RsaPublicKey.FromJwk(jwk!)));

        // The node's replica ends where the coordinator's ledger was when it asked (the payout entry follows the signature).
        var entries = pool.Engine.LedgerEntries(pool.Pool);
        Assert.Equal(new LedgerHead(entries[^2].Sequence, entries[^2].Hash), pool.Guard.Head(pool.Pool));
    }

    [Fact]
    public async Task A_second_payout_for_a_paid_claim_is_refused_as_already_paid()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        Assert.Equal(1, await pool.Engine.ProcessPayoutsAsync(default));

        // Replayed with the ledger that now records the payout…
        var replay = pool.ToGuardRequest(pool.Signer.Requests[0]);
        Assert.Equal(GuardRefusal.AlreadyPaid, pool.Guard.Check(replay).Refusal);

        // …and by a fresh node that never signed it, from the ledger alone.
        using var fresh = new SigningGuard(pool.Options with { DataDir = pool.DataDir + "-fresh" });
        Assert.Equal(GuardRefusal.AlreadyPaid, fresh.Check(pool.ToGuardRequest(pool.Signer.Requests[0], after: 0)).Refusal);
    }

    [Fact]
    public async Task Another_instruction_for_a_claim_this_node_signed_is_refused_but_the_same_one_may_be_signed_again()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);
        Assert.True(pool.Guard.Check(request).Allowed);
        pool.Guard.Signed(request);

        // A coordinator that crashed before recording the payout asks again: same bytes, one payout.
        Assert.True(pool.Guard.Check(request).Allowed);
        var other = pool.Request(Tweak(Payload(request), i => i["member"] = "bob"), request.Justification, null);
        Assert.Equal(GuardRefusal.AlreadyPaid, pool.Guard.Check(other).Refusal);
    }

    [Fact]
    public async Task Forged_evidence_is_refused_as_bad_evidence()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);
        var evidence = request.Justification!["evidence"]!.AsArray();
        var cose = Base64Url.Decode(evidence[5]!["cose"]!.GetValue<string>());
        cose[^5] ^= 0x01; // inside the ES256 signature
        evidence[5]!["cose"] = Base64Url.Encode(cose);

        var decision = pool.Guard.Check(request);
        Assert.Equal(GuardRefusal.BadEvidence, decision.Refusal);
        Assert.Contains("does not verify", decision.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_evidence_is_refused_as_bad_evidence()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);
        request.Justification!["evidence"]!.AsArray().RemoveAt(4);

        var decision = pool.Guard.Check(request);
        Assert.Equal(GuardRefusal.BadEvidence, decision.Refusal);
        Assert.Contains("missing from the justification", decision.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_justification_without_the_predecessor_the_claim_names_is_refused_and_cannot_pass_for_a_gap()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);
        var claim = Assert.Single(pool.Engine.ListClaims());
        var first = claim.Evidence[0]!["seq"]!.GetValue<long>();
        var opened = pool.Engine.LedgerEntries(pool.Pool).Single(e => e.Kind == LedgerEntry.ClaimOpened);
        Assert.Equal(first - 1, opened.Body[ClaimPredecessor.Field]!["seq"]!.GetValue<long>());
        var evidence = request.Justification!["evidence"]!.AsArray();
        evidence.Remove(evidence.Single(e => e!["seq"]!.GetValue<long>() == first - 1));

        var decision = pool.Guard.Check(request);
        Assert.Equal(GuardRefusal.BadEvidence, decision.Refusal);
        Assert.Contains("names as its first record's predecessor", decision.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Evidence_that_does_not_trigger_the_policy_is_refused_even_when_the_ledger_says_the_claim_is_approved()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        var quiet = await pool.StoreAsync(pool.Device.Quiet(GuardedPool.Start, minutes: 14));
        Assert.Empty(pool.Engine.ListClaims());

        // The malicious coordinator writes the claim the rule never opened, and its approval.
        var records = quiet.Skip(2).Take(11).Select(pool.ToVerified).ToList();
        var claim = ForgedClaim(pool, records, amount: 25_000);
        var ledger = Forge(pool, pool.Engine.LedgerEntries(pool.Pool), ClaimEntries(claim, records));
        var justification = Justification(pool, quiet.Skip(1).Take(12));

        var decision = pool.Guard.Check(pool.Request(PayoutInstruction.Payload(claim, "EUR"), justification, Segment(ledger, 0)));
        Assert.Equal(GuardRefusal.TriggerNotMet, decision.Refusal);
        Assert.Contains("does not fire", decision.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_amount_above_the_policy_is_refused_even_when_the_claim_entry_says_so()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        var flood = await pool.StoreAsync(pool.Device.Leak(GuardedPool.Start, wetMinutes: 12));
        var genuine = pool.Engine.LedgerEntries(pool.Pool).TakeWhile(e => e.Kind != LedgerEntry.ClaimOpened).ToList();

        // The same episode, with the claim's amount raised from 25 000 to 40 000 (under the pool maximum of 50 000).
        var records = flood.Skip(2).Take(11).Select(pool.ToVerified).ToList();
        var claim = ForgedClaim(pool, records, amount: 40_000);
        var ledger = Forge(pool, genuine, ClaimEntries(claim, records));
        var justification = Justification(pool, flood.Skip(1).Take(12));

        var decision = pool.Guard.Check(pool.Request(PayoutInstruction.Payload(claim, "EUR"), justification, Segment(ledger, 0)));
        Assert.Equal(GuardRefusal.AmountAbovePolicy, decision.Refusal);
    }

    [Fact]
    public async Task An_amount_above_the_nodes_own_limits_is_refused_per_payout_and_per_utc_day()
    {
        await using (var strict = await GuardedPool.CreateAsync(key, maxPerPayout: 20_000))
        {
            await strict.FloodAsync();
            Assert.Equal(GuardRefusal.AboveNodeLimit, strict.Guard.Check(await PayoutRequestAsync(strict)).Refusal);
        }

        await using var daily = await GuardedPool.CreateAsync(key, maxPerDay: 30_000);
        await daily.FloodAsync();
        var request = await PayoutRequestAsync(daily);
        Assert.True(daily.Guard.Check(request).Allowed);
        daily.Guard.Signed(request);

        // A second claim the same UTC day, under another policy: 25 000 + 10 000 is above the day's 30 000.
        var policy = ClaimsEngine.PolicyBody("pol-instant", "alice", "water_leak == 1", 10_000, 0, null);
        await daily.Engine.IssuePolicyAsync(daily.Pool, "alice", "pol-instant", "water_leak == 1", 10_000, 0, null, daily.Sign(LedgerEntry.PolicyIssued, policy), default);
        await daily.StoreAsync(daily.Device.Leak(GuardedPool.Start.AddMinutes(20), wetMinutes: 2));
        var instant = daily.Engine.ListClaims().Single(c => c.PolicyId == "pol-instant" && c.Status == "approved");
        var second = daily.Request(PayoutInstruction.Payload(instant, "EUR"), JustificationFor(daily, instant), daily.LedgerAfter(daily.Guard.Head(daily.Pool).Sequence));
        var refused = daily.Guard.Check(second);
        Assert.Equal(GuardRefusal.AboveNodeLimit, refused.Refusal);

        // The day's total survives a restart of the node; the next UTC day starts from zero.
        daily.RestartGuard();
        Assert.Equal(GuardRefusal.AboveNodeLimit, daily.Guard.Check(second).Refusal);
        daily.Clock.Advance(TimeSpan.FromDays(1));
        Assert.True(daily.Guard.Check(second).Allowed);
    }

    [Fact]
    public async Task A_device_enrolled_without_an_admin_signature_is_refused_and_not_applied()
    {
        await using var pool = await GuardedPool.CreateAsync(key, recordAdminKeys: false); // a lax coordinator: its engine checks no admin key
        var before = pool.Engine.LedgerEntries(pool.Pool).Count;
        using var rogue = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        await pool.Engine.EnrollDeviceAsync(pool.Pool, "alice", "dev-rogue", rogue.ExportSubjectPublicKeyInfo(), default);
        var head = pool.Engine.LedgerEntries(pool.Pool)[^1];

        var checkpoint = LedgerCheckpoint.Payload(pool.Pool, head.Sequence, head.Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));
        var decision = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), pool.LedgerAfter(0)));

        Assert.Equal(GuardRefusal.UnsignedRegistryChange, decision.Refusal);
        Assert.Contains("device_enrolled", decision.Detail, StringComparison.Ordinal);
        Assert.Equal(new LedgerHead(0, LedgerEntry.Genesis), pool.Guard.Head(pool.Pool)); // nothing of the segment applied
        Assert.Equal(before + 1, head.Sequence);
    }

    [Fact]
    public async Task A_premium_without_an_admin_signature_is_refused_so_a_coordinator_cannot_raise_the_balance()
    {
        await using var pool = await GuardedPool.CreateAsync(key, recordAdminKeys: false); // a lax coordinator: its engine checks no admin key
        await pool.Engine.RecordPremiumAsync(pool.Pool, "bob", 500_000, "pay-forged", null, default);
        var head = pool.Engine.LedgerEntries(pool.Pool)[^1];

        var checkpoint = LedgerCheckpoint.Payload(pool.Pool, head.Sequence, head.Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));
        var decision = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), pool.LedgerAfter(0)));

        Assert.Equal(GuardRefusal.UnsignedRegistryChange, decision.Refusal);
        Assert.Contains("premium", decision.Detail, StringComparison.Ordinal);
        Assert.Equal(new LedgerHead(0, LedgerEntry.Genesis), pool.Guard.Head(pool.Pool));
    }

    [Fact]
    public async Task A_signed_premium_replayed_under_its_payment_reference_is_refused_by_the_engine_and_by_the_node()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        var signed = pool.Engine.LedgerEntries(pool.Pool).Single(e => e.Kind == LedgerEntry.Premium);

        var again = await Assert.ThrowsAsync<ClaimsException>(() => pool.Engine.RecordPremiumAsync(pool.Pool, "alice", 100_000, "pay-alice-1",
            pool.Sign(LedgerEntry.Premium, RegistryChange.Premium("alice", 100_000, "pay-alice-1")), default));
        Assert.Equal(ClaimsError.AlreadyExists, again.Error);

        // A coordinator that writes the database itself appends the signed premium a second time, well chained.
        var ledger = Forge(pool, pool.Engine.LedgerEntries(pool.Pool), [(LedgerEntry.Premium, signed.Body.DeepClone().AsObject())]);
        var head = ledger[^1];
        var checkpoint = LedgerCheckpoint.Payload(pool.Pool, head.Sequence, head.Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));
        var decision = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), new JsonArray([.. ledger.Select(e => (JsonNode)e.ToJson())])));

        Assert.Equal(GuardRefusal.Malformed, decision.Refusal); // an inconsistent segment
        Assert.Contains("pay-alice-1", decision.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_policy_issued_without_an_admin_signature_is_refused()
    {
        await using var pool = await GuardedPool.CreateAsync(key, recordAdminKeys: false, signPolicy: false);
        await pool.FloodAsync();

        var refused = await Assert.ThrowsAsync<ClaimsException>(() => pool.Engine.ProcessPayoutsAsync(default));
        Assert.Equal(ClaimsError.SigningUnavailable, refused.Error);
        var decision = Assert.Single(pool.Signer.Decisions);
        Assert.Equal(GuardRefusal.UnsignedRegistryChange, decision.Refusal);
        Assert.Contains("policy_issued", decision.Detail, StringComparison.Ordinal);
        Assert.Empty(pool.Engine.ListPayouts());
    }

    [Fact]
    public async Task Evidence_signed_by_a_key_other_than_the_enrolled_one_is_refused_as_an_unknown_device()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);

        // The coordinator re-signs the episode with a key of its own and offers that key for dev-1.
        await using var impostor = new SimulatedDevice("dev-1");
        var forged = impostor.Leak(GuardedPool.Start, wetMinutes: 12);
        request.Justification!["evidence"] = new JsonArray([.. forged.Take(14).Select((c, i) => (JsonNode)new JsonObject { ["device"] = "dev-1", ["seq"] = i, ["cose"] = Base64Url.Encode(c) }).Skip(1)]);
        request.Justification["device_keys"] = new JsonObject { ["dev-1"] = LedgerExport.PublicKeyPem(impostor.PublicKey) };

        Assert.Equal(GuardRefusal.UnknownDevice, pool.Guard.Check(request).Refusal);
    }

    [Fact]
    public async Task A_ledger_segment_that_rewrites_history_is_refused_as_forked_and_a_gap_as_stale_with_the_head()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        Assert.NotNull(await pool.Engine.CheckpointAsync(pool.Pool, force: true, default)); // the node learns the ledger
        var head = pool.Guard.Head(pool.Pool);
        Assert.Equal(pool.Engine.LedgerEntries(pool.Pool).Count, head.Sequence);
        await pool.PremiumAsync("bob", 5_000, "pay-bob-1");
        await pool.PremiumAsync("bob", 6_000, "pay-bob-2");

        // History rewritten: the first premium raised, every hash after it recomputed.
        var entries = pool.Engine.LedgerEntries(pool.Pool).ToList();
        var premium = entries.FindIndex(e => e.Kind == LedgerEntry.Premium);
        entries[premium] = entries[premium] with { Body = new JsonObject { ["member"] = "alice", ["amount"] = 900_000 } };
        var rewritten = Forge(pool, entries, []);
        var now = rewritten[^1];
        var checkpoint = LedgerCheckpoint.Payload(pool.Pool, now.Sequence, now.Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));

        var forked = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), Segment(rewritten, 0)));
        Assert.Equal(GuardRefusal.ForkedLedger, forked.Refusal);
        var onlyNew = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), Segment(rewritten, head.Sequence)));
        Assert.Equal(GuardRefusal.ForkedLedger, onlyNew.Refusal); // its prev is not the node's head
        Assert.Equal(head, pool.Guard.Head(pool.Pool));

        // A segment that skips an entry: stale, and the answer carries the node's head to resend from.
        var genuine = pool.Engine.LedgerEntries(pool.Pool);
        var stale = pool.Guard.Check(pool.Request(checkpoint, CheckpointJustification(pool), new JsonArray([.. genuine.Skip((int)head.Sequence + 1).Select(e => (JsonNode)e.ToJson())])));
        Assert.Equal(GuardRefusal.StaleLedger, stale.Refusal);
        Assert.Equal(head, stale.Head);
    }

    [Fact]
    public async Task A_checkpoint_is_signed_only_over_the_nodes_verified_head()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        Assert.NotNull(await pool.Engine.CheckpointAsync(pool.Pool, force: true, default));
        Assert.True(Assert.Single(pool.Signer.Decisions).Allowed);

        var entries = pool.Engine.LedgerEntries(pool.Pool);
        var notHead = LedgerCheckpoint.Payload(pool.Pool, entries[^2].Sequence, entries[^2].Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));
        Assert.Equal(GuardRefusal.CheckpointNotHead, pool.Guard.Check(pool.Request(notHead, CheckpointJustification(pool), null)).Refusal);
        var otherHash = LedgerCheckpoint.Payload(pool.Pool, entries[^1].Sequence, entries[^2].Hash, LedgerEntry.FormatTime(pool.Clock.GetUtcNow()));
        Assert.Equal(GuardRefusal.CheckpointNotHead, pool.Guard.Check(pool.Request(otherHash, CheckpointJustification(pool), null)).Refusal);
    }

    [Fact]
    public async Task A_raw_message_is_refused_unless_the_node_allows_raw_signing()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        var raw = pool.Request("transfer 1 000 000 EUR to mallory"u8.ToArray(), null, null);
        Assert.Equal(GuardRefusal.RawSigningDisabled, pool.Guard.Check(raw).Refusal);

        using var lenient = new SigningGuard(pool.Options with { DataDir = pool.DataDir + "-raw", AllowRawSigning = true });
        Assert.True(lenient.Check(raw).Allowed);
    }

    [Fact]
    public async Task A_request_whose_justification_names_another_purpose_or_whose_header_names_another_kid_is_refused()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        await pool.FloodAsync();
        var request = await PayoutRequestAsync(pool);
        request.Justification!["purpose"] = "checkpoint";
        Assert.Equal(GuardRefusal.UnknownPurpose, pool.Guard.Check(request).Refusal);

        var wrongKid = (await PayoutRequestAsync(pool)) with { Kid = "pool-x/custody-z" };
        Assert.Equal(GuardRefusal.Malformed, pool.Guard.Check(wrongKid).Refusal);
    }

    [Fact]
    public async Task A_restarted_node_resumes_at_the_same_head_from_its_persisted_replica()
    {
        await using var pool = await GuardedPool.CreateAsync(key);
        Assert.NotNull(await pool.Engine.CheckpointAsync(pool.Pool, force: true, default));
        var head = pool.Guard.Head(pool.Pool);
        Assert.True(head.Sequence > 0);

        pool.RestartGuard();
        Assert.Equal(head, pool.Guard.Head(pool.Pool));

        // A torn last line (a power cut mid-append) is dropped: the decision after it never happened.
        var file = Path.Combine(pool.DataDir, "replica", pool.Pool, "entries.jsonl");
        await File.AppendAllTextAsync(file, "{\"seq\":");
        pool.RestartGuard();
        Assert.Equal(head, pool.Guard.Head(pool.Pool));
    }

    private static Task<GuardRequest> PayoutRequestAsync(GuardedPool pool)
    {
        var claim = pool.Engine.ListClaims().Single(c => c.Status == "approved");
        var owner = pool.Engine.GetPool(pool.Pool)!;
        return Task.FromResult(pool.Request(PayoutInstruction.Payload(claim, owner.Currency), JustificationFor(pool, claim), pool.LedgerAfter(pool.Guard.Head(pool.Pool).Sequence)));
    }

    /// <summary>What the engine sends for the claim: the records from the predecessor of its first to its last.</summary>
    private static JsonObject JustificationFor(GuardedPool pool, ClaimInfo claim)
    {
        var first = claim.Evidence[0]!["seq"]!.GetValue<long>();
        var last = claim.Evidence[^1]!["seq"]!.GetValue<long>();
        return Justification(pool, pool.Engine.Evidence(pool.Device.Id, first - 1, (int)(last - first + 2)).Select(e => e.Cose));
    }

    private static JsonObject Justification(GuardedPool pool, IEnumerable<byte[]> records) => new()
    {
        ["pool"] = pool.Pool,
        ["purpose"] = "payout",
        ["evidence"] = new JsonArray([.. records.Select(c => (JsonNode)new JsonObject
        {
            ["device"] = pool.Device.Id, ["seq"] = pool.ToVerified(c).Sequence, ["cose"] = Base64Url.Encode(c),
        })]),
        ["device_keys"] = new JsonObject { [pool.Device.Id] = LedgerExport.PublicKeyPem(pool.Device.PublicKey) },
    };

    private static JsonObject CheckpointJustification(GuardedPool pool) => new() { ["pool"] = pool.Pool, ["purpose"] = "checkpoint" };

    private static ClaimInfo ForgedClaim(GuardedPool pool, IReadOnlyList<ShareVault.Claims.Ingest.VerifiedRecord> records, long amount) =>
        ForgedLedger.Claim(pool.Pool, "alice", "pol-flood", FloodRule, records, amount);

    private static List<(string Kind, JsonObject Body)> ClaimEntries(ClaimInfo claim, IReadOnlyList<ShareVault.Claims.Ingest.VerifiedRecord> records) =>
        ForgedLedger.ClaimEntries(claim, FloodRule, records);

    /// <summary>A well-chained ledger (every hash recomputed) of <paramref name="entries"/> followed by <paramref name="extra"/>: what a coordinator that controls the database can write.</summary>
    private static List<LedgerEntry> Forge(GuardedPool pool, IEnumerable<LedgerEntry> entries, IEnumerable<(string Kind, JsonObject Body)> extra) =>
        ForgedLedger.Chain(pool.Pool, pool.Clock.GetUtcNow(), entries, extra);

    private static JsonArray Segment(IEnumerable<LedgerEntry> entries, long after) => ForgedLedger.Segment(entries, after);

    private static byte[] Payload(GuardRequest request) => Base64Url.Decode(Encoding.ASCII.GetString(request.SigningInput).Split('.')[1]);

    private static byte[] Tweak(byte[] payload, Action<JsonObject> change)
    {
        var instruction = JsonNode.Parse(payload)!.AsObject();
        change(instruction);
        return Encoding.UTF8.GetBytes(string.Concat(instruction.OrderBy(p => p.Key, StringComparer.Ordinal).Select((p, i) => (i == 0 ? "{" : ",") + "\"" + p.Key + "\":" + p.Value!.ToJsonString())) + "}");
    }
}
