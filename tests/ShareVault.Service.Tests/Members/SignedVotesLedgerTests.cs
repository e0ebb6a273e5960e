using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Service.Tests.Members;

/// <summary>
/// Members who hold keys join, accept policies, enrol devices and vote with their signatures; the
/// votes are ledger entries that <c>ledger verify</c> checks offline, so an export whose vote was
/// altered, dropped or re-attributed does not verify — even when the forger re-chains the hashes.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class SignedVotesLedgerTests(PoolKeyFixture key)
{
    [Fact]
    public async Task Signed_votes_are_in_the_export_and_it_verifies()
    {
        var (text, _) = await VotedExportAsync();
        var export = JsonNode.Parse(text)!.AsObject();
        var kinds = Entries(export).Select(e => e["kind"]!.GetValue<string>()).ToList();
        Assert.Equal(2, kinds.Count(k => k == LedgerEntry.Vote));
        Assert.Contains(LedgerEntry.PolicyAccepted, kinds);
        Assert.All(Entries(export).Where(e => e["kind"]!.GetValue<string>() == LedgerEntry.Vote), v => Assert.NotNull(v["body"]![MemberSignature.Field]));
        var decision = Entries(export).Single(e => e["kind"]!.GetValue<string>() == LedgerEntry.Decision);
        Assert.Equal(2, decision["body"]!["votes"]!.AsArray().Count);
        var verification = LedgerVerifier.Verify(text);
        Assert.True(verification.IsValid, verification.Detail);
    }

    [Fact]
    public async Task An_export_whose_vote_was_altered_dropped_or_reattributed_does_not_verify()
    {
        var (text, _) = await VotedExportAsync();
        var unsignedTail = new LedgerVerifyOptions { AcceptUnsignedTail = true };

        // Altered: bob's approval turned into a decline. The hash chain breaks; re-chained (and so
        // past every checkpoint), bob's signature no longer covers the vote.
        var altered = Tamper(text, entries => VoteOf(entries, "bob")["body"]!["approve"] = false);
        Assert.False(LedgerVerifier.Verify(altered.Text).IsValid);
        var alteredRechained = LedgerVerifier.Verify(altered.Rechained, unsignedTail);
        Assert.False(alteredRechained.IsValid);
        Assert.Contains("NotMemberSigned", alteredRechained.Detail, StringComparison.Ordinal);

        // Dropped: carol's vote removed; the decision names a vote that is no longer there.
        var dropped = Tamper(text, entries => entries.Remove(VoteOf(entries, "carol")));
        Assert.False(LedgerVerifier.Verify(dropped.Text).IsValid);
        var droppedRechained = LedgerVerifier.Verify(dropped.Rechained, unsignedTail);
        Assert.False(droppedRechained.IsValid);
        Assert.Contains("decision on claim", droppedRechained.Detail, StringComparison.Ordinal);

        // Re-attributed: carol's signed vote now claims to be dave's (another keyed member).
        var moved = Tamper(text, entries => VoteOf(entries, "carol")["body"]!["member"] = "dave");
        Assert.False(LedgerVerifier.Verify(moved.Text).IsValid);
        var movedRechained = LedgerVerifier.Verify(moved.Rechained, unsignedTail);
        Assert.False(movedRechained.IsValid);
        Assert.Contains("NotMemberSigned", movedRechained.Detail, StringComparison.Ordinal);

        // The untouched export, re-chained the same way, still verifies: the refusals above are the votes'.
        Assert.True(LedgerVerifier.Verify(Tamper(text, _ => { }).Rechained, unsignedTail).IsValid);
    }

    [Fact]
    public async Task The_engine_refuses_an_unsigned_or_foreign_signature_for_a_member_with_a_key()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await engine.CreatePoolAsync("pool-1", "Riverside", "EUR", key.KeyName, 50_000, default);
        using var alice = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var mallory = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var aliceKey = MemberKey.FromSubjectPublicKeyInfo(alice.ExportSubjectPublicKeyInfo());
        var join = RegistryChange.MemberJoined("alice", "Alice", aliceKey);

        var forgedJoin = await Assert.ThrowsAsync<ClaimsException>(() => engine.AddMemberAsync("pool-1", "alice", "Alice", aliceKey, MemberSignature.Sign(mallory, "pool-1", LedgerEntry.MemberJoined, join), default));
        Assert.Equal(ClaimsError.Forbidden, forgedJoin.Error);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.AddMemberAsync("pool-1", "alice", "Alice", aliceKey, null, default))).Error);
        await engine.AddMemberAsync("pool-1", "alice", "Alice", aliceKey, MemberSignature.Sign(alice, "pool-1", LedgerEntry.MemberJoined, join), default);

        await engine.IssuePolicyAsync("pool-1", "alice", "pol-1", "water_leak == 1 for 10m", 25_000, 0, null, default);
        var policy = engine.ListPolicies("pool-1").Single();
        var accept = RegistryChange.PolicyAccepted("pol-1", "alice", policy.RuleHash);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.AcceptPolicyAsync("pool-1", "pol-1", "alice", null, default))).Error);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.AcceptPolicyAsync("pool-1", "pol-1", "alice", MemberSignature.Sign(mallory, "pool-1", LedgerEntry.PolicyAccepted, accept), default))).Error);
        await engine.AcceptPolicyAsync("pool-1", "pol-1", "alice", MemberSignature.Sign(alice, "pool-1", LedgerEntry.PolicyAccepted, accept), default);
        Assert.Contains("pol-1", engine.AcceptedPolicies("pool-1"));

        using var device = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = device.ExportSubjectPublicKeyInfo();
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.EnrollDeviceAsync("pool-1", "alice", "dev-1", spki, default))).Error);
        await engine.EnrollDeviceAsync("pool-1", "alice", "dev-1", spki, null, MemberSignature.Sign(alice, "pool-1", LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled("dev-1", "alice", spki)), default);
        var (registry, refused, _) = PoolRegistry.Fold("pool-1", engine.LedgerEntries("pool-1"));
        Assert.Null(refused);
        Assert.Equal(aliceKey.Kid, registry.MemberKeys["alice"].Kid);
    }

    /// <summary>
    /// alice's flooded home opens a claim whose policy asks for two votes; bob and carol approve with
    /// their key files; the payout is signed and a checkpoint signs the head.
    /// </summary>
    private async Task<(string Text, string ClaimId)> VotedExportAsync()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", key.KeyName, 50_000, default);
        var keys = new Dictionary<string, ECDsa>();
        try
        {
            foreach (var member in new[] { "alice", "bob", "carol", "dave" })
            {
                keys[member] = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var memberKey = MemberKey.FromSubjectPublicKeyInfo(keys[member].ExportSubjectPublicKeyInfo());
                var join = RegistryChange.MemberJoined(member, member, memberKey);
                await engine.AddMemberAsync("pool-1", member, member, memberKey, MemberSignature.Sign(keys[member], "pool-1", LedgerEntry.MemberJoined, join), default);
            }

            var policy = await engine.IssuePolicyAsync("pool-1", "alice", "pol-alice-flood", "water_leak == 1 for 10m", 25_000, 2, null, default);
            await engine.AcceptPolicyAsync("pool-1", policy.Id, "alice", MemberSignature.Sign(keys["alice"], "pool-1", LedgerEntry.PolicyAccepted, RegistryChange.PolicyAccepted(policy.Id, "alice", policy.Rule.HashHex)), default);
            await engine.RecordPremiumAsync("pool-1", "bob", 60_000, default);
            await using var device = new SimulatedDevice("pi-votes-1");
            await engine.EnrollDeviceAsync("pool-1", "alice", device.Id, device.PublicKey, null,
                MemberSignature.Sign(keys["alice"], "pool-1", LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(device.Id, "alice", device.PublicKey)), default);
            await using var ingest = new EvidenceIngest(engine, (_, _, _) => Task.CompletedTask, TimeProvider.System);
            await ingest.ProcessBatchAsync([.. device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12).Select(r => new IncomingEvidence(EvidenceTopics.Evidence(device.Id), r, device.Id))], default);
            var claim = Assert.Single(engine.ListClaims("pool-1"));
            foreach (var voter in new[] { "bob", "carol" })
            {
                var vote = RegistryChange.Vote(claim.Id, voter, approve: true);
                await engine.VoteAsync(claim.Id, voter, true, MemberSignature.Sign(keys[voter], "pool-1", LedgerEntry.Vote, vote), default);
            }

            Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
            Assert.NotNull(await engine.CheckpointAsync("pool-1", force: true, default));
            return (LedgerExport.ToText(engine.ExportLedger("pool-1")), claim.Id);
        }
        finally
        {
            foreach (var k in keys.Values)
            {
                k.Dispose();
            }
        }
    }

    private static IEnumerable<JsonObject> Entries(JsonObject export) => export["entries"]!.AsArray().Select(e => e!.AsObject());

    private static JsonObject VoteOf(JsonArray entries, string member) =>
        entries.Select(e => e!.AsObject()).Single(e => e["kind"]!.GetValue<string>() == LedgerEntry.Vote && e["body"]!["member"]!.GetValue<string>() == member);

    /// <summary>The export changed by <paramref name="change"/> as is, and re-chained: sequence numbers, prev and hashes recomputed, checkpoints dropped (what a forger without the pool key can do).</summary>
    private static (string Text, string Rechained) Tamper(string text, Action<JsonArray> change)
    {
        var export = JsonNode.Parse(text)!.AsObject();
        change(export["entries"]!.AsArray());
        var asIs = export.ToJsonString();
        var poolId = export["pool"]!["id"]!.GetValue<string>();
        var previous = LedgerEntry.Genesis;
        var seq = 0L;
        foreach (var e in export["entries"]!.AsArray().Select(x => x!.AsObject()))
        {
            e["seq"] = ++seq;
            e["prev"] = previous;
            e["hash"] = previous = LedgerEntry.ComputeHash(poolId, seq, e["time"]!.GetValue<string>(), e["kind"]!.GetValue<string>(), e["body"]!.AsObject(), previous);
        }

        export["checkpoints"] = new JsonArray();
        return (asIs, export.ToJsonString());
    }
}
