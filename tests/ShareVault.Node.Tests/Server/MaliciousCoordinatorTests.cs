using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.TestSupport;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Hardware;
using ShareVault.Node.Audit;

namespace ShareVault.Node.Tests.Server;

/// <summary>
/// Three real guarded node processes (two SoftHSM, one swtpm) and a production coordinator: a
/// justified payout is signed; then, acting as a malicious coordinator through the same mTLS
/// client path the pool signer uses, each forged request is refused by every node, the
/// coordinator's error names each node with its refusal, and each node's hash-chained audit log
/// holds the refusal with that reason. (A coordinator without a trusted client certificate is
/// refused at TLS: <see cref="CustodyNodeTests"/>.)
/// </summary>
public sealed class MaliciousCoordinatorTests(GuardedNodes nodes) : IClassFixture<GuardedNodes>
{
    [Fact]
    public async Task A_justified_payout_is_signed_by_two_nodes_and_verifies_with_dotnet_and_openssl()
    {
        var pool = await nodes.CreatePoolAsync();
        await nodes.StoreAsync(pool, pool.Device.Leak(GuardedNodes.Start, wetMinutes: 12));

        Assert.True(await nodes.Engine.ProcessPayoutsAsync(default) >= 1);

        var payout = Assert.Single(nodes.Engine.ListPayouts(pool.Id));
        Assert.True(Jws.TryParse(payout.Jws, out var jws));
        var key = KeyPublication.PublicKeys(nodes.Key).Single(k => k.Kid == jws.Kid).Key;
        Assert.True(Jws.Verify(jws, key));

        var parts = payout.Jws.Split('.');
        var dir = Directory.CreateTempSubdirectory("sv-guarded-openssl-").FullName;
        await File.WriteAllTextAsync(Path.Combine(dir, "input"), parts[0] + "." + parts[1]);
        await File.WriteAllBytesAsync(Path.Combine(dir, "sig"), Base64Url.Decode(parts[2]));
        await File.WriteAllTextAsync(Path.Combine(dir, "key.pem"), key.ToPem());
        var openssl = await CliRunner.OpenSslAsync("dgst", "-sha256", "-verify", Path.Combine(dir, "key.pem"), "-signature", Path.Combine(dir, "sig"), Path.Combine(dir, "input"));
        Assert.True(openssl.ExitCode == 0, openssl.StdErr);
        Assert.Contains("Verified OK", openssl.StdOut, StringComparison.Ordinal);

        // Both signers' audit logs hold the payout as signed after their guard's checks.
        var signers = nodes.Key.Quorums.Single(q => q.Kid == jws.Kid).Members;
        Assert.Equal(2, signers.Count);
        var inputHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1])));
        foreach (var signer in signers)
        {
            var line = nodes.VerifiedAudit(nodes.Names.ToList().IndexOf(signer)).Last(l => Text(l["request"]?["signing_input_sha256"]) == inputHash);
            Assert.Equal("signed", Text(line["outcome"]!["result"]));
            Assert.Equal(payout.ClaimId, Text(line["request"]!["claim"]));
            Assert.Contains("trigger recomputed", Text(line["outcome"]!["detail"]), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Forged_evidence_is_refused_by_every_node_and_the_genuine_payout_still_signs()
    {
        var (pool, payload, justification) = await ApprovedClaimAsync();
        var evidence = justification["evidence"]!.AsArray();
        var cose = Base64Url.Decode(evidence[5]!["cose"]!.GetValue<string>());
        cose[^5] ^= 0x01; // inside the ES256 signature
        evidence[5]!["cose"] = Base64Url.Encode(cose);

        var refusals = await RefusedByEveryNodeAsync(pool, payload, justification, nodes.Engine.LedgerEntries(pool.Id), "BadEvidence");
        Assert.All(refusals, f => Assert.Contains("does not verify", f.Detail, StringComparison.Ordinal));

        await nodes.Engine.ProcessPayoutsAsync(default);
        Assert.Single(nodes.Engine.ListPayouts(pool.Id));
    }

    [Fact]
    public async Task Missing_evidence_is_refused_by_every_node()
    {
        var (pool, payload, justification) = await ApprovedClaimAsync();
        justification["evidence"]!.AsArray().RemoveAt(4);

        var refusals = await RefusedByEveryNodeAsync(pool, payload, justification, nodes.Engine.LedgerEntries(pool.Id), "BadEvidence");
        Assert.All(refusals, f => Assert.Contains("missing from the justification", f.Detail, StringComparison.Ordinal));

        await nodes.Engine.ProcessPayoutsAsync(default);
        Assert.Single(nodes.Engine.ListPayouts(pool.Id));
    }

    [Fact]
    public async Task Evidence_that_does_not_trigger_the_policy_is_refused_by_every_node_though_the_ledger_says_approved()
    {
        var pool = await nodes.CreatePoolAsync();
        var quiet = await nodes.StoreAsync(pool, pool.Device.Quiet(GuardedNodes.Start, minutes: 14));
        Assert.Empty(nodes.Engine.ListClaims(pool.Id));

        // The malicious coordinator writes the claim the rule never opened, and its approval.
        var records = quiet.Skip(2).Take(11).Select(pool.ToVerified).ToList();
        var claim = ForgedLedger.Claim(pool.Id, "alice", pool.Policy, GuardedNodes.FloodRule, records, GuardedNodes.PolicyAmount);
        var ledger = ForgedLedger.Chain(pool.Id, nodes.Clock.GetUtcNow(), nodes.Engine.LedgerEntries(pool.Id), ForgedLedger.ClaimEntries(claim, GuardedNodes.FloodRule, records));

        var refusals = await RefusedByEveryNodeAsync(pool, PayoutInstruction.Payload(claim, "EUR"), GuardedNodes.Justification(pool, quiet.Skip(1).Take(12)), ledger, "TriggerNotMet");
        Assert.All(refusals, f => Assert.Contains("does not fire", f.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Evidence_of_a_device_enrolled_without_an_admin_signature_is_refused_by_every_node()
    {
        // A lax engine (no admin key recorded) enrols the device unsigned; its claim opens and is approved.
        // No premium: the engine itself never pays it (balance 0), only the malicious coordinator asks.
        var pool = await nodes.CreatePoolAsync(lax: true, premium: 0);
        var (payload, justification) = await ClaimRequestAsync(pool);

        var refusals = await RefusedByEveryNodeAsync(pool, payload, justification, nodes.Engine.LedgerEntries(pool.Id), "UnsignedRegistryChange");
        Assert.All(refusals, f => Assert.Contains("device_enrolled", f.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_amount_above_the_policy_is_refused_by_every_node_though_the_claim_entry_says_so()
    {
        var pool = await nodes.CreatePoolAsync();
        var flood = pool.Device.Leak(GuardedNodes.Start, wetMinutes: 12);

        // The episode's real records, and a claim for 40 000 (under the pool maximum of 50 000) where the policy pays 25 000.
        var records = flood.Skip(2).Take(11).Select(pool.ToVerified).ToList();
        var claim = ForgedLedger.Claim(pool.Id, "alice", pool.Policy, GuardedNodes.FloodRule, records, 40_000);
        var ledger = ForgedLedger.Chain(pool.Id, nodes.Clock.GetUtcNow(), nodes.Engine.LedgerEntries(pool.Id), ForgedLedger.ClaimEntries(claim, GuardedNodes.FloodRule, records));

        var refusals = await RefusedByEveryNodeAsync(pool, PayoutInstruction.Payload(claim, "EUR"), GuardedNodes.Justification(pool, flood.Skip(1).Take(12)), ledger, "AmountAbovePolicy");
        Assert.All(refusals, f => Assert.Contains("pays at most 25000", f.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_second_payout_for_a_paid_claim_is_refused_by_every_node()
    {
        var (pool, payload, justification) = await ApprovedClaimAsync();
        await nodes.Engine.ProcessPayoutsAsync(default);
        var payout = Assert.Single(nodes.Engine.ListPayouts(pool.Id));
        Assert.Equal(payload, Encoding.UTF8.GetBytes(payout.Instruction));

        // The same instruction again, with the ledger that now records the payout.
        var refusals = await RefusedByEveryNodeAsync(pool, payload, justification, nodes.Engine.LedgerEntries(pool.Id), "AlreadyPaid");
        Assert.All(refusals, f => Assert.Contains("is paid in the node's ledger", f.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_ledger_segment_that_rewrites_history_is_refused_by_every_node()
    {
        var pool = await nodes.CreatePoolAsync();
        await CheckpointOnEveryNodeAsync(pool);
        await nodes.PremiumAsync(pool.Id, "bob", 5_000, "pay-bob-1");
        await nodes.PremiumAsync(pool.Id, "bob", 6_000, "pay-bob-2");

        // History rewritten: alice's premium raised, every hash after it recomputed, a checkpoint over the new head.
        var entries = nodes.Engine.LedgerEntries(pool.Id).ToList();
        var premium = entries.FindIndex(e => e.Kind == LedgerEntry.Premium);
        entries[premium] = entries[premium] with { Body = new JsonObject { ["member"] = "alice", ["amount"] = 900_000 } };
        var rewritten = ForgedLedger.Chain(pool.Id, nodes.Clock.GetUtcNow(), entries, []);

        // Sent whole (the node meets its own premium entry changed) and as only the entries after the node's head (their chain starts elsewhere).
        var whole = await RefusedByEveryNodeAsync(pool, CheckpointPayload(pool, rewritten[^1]), CheckpointJustification(pool), rewritten, "ForkedLedger", sendFrom: 0);
        Assert.All(whole, f => Assert.Contains($"entry {premium + 1} differs from the node's entry {premium + 1}: the segment rewrites history", f.Detail, StringComparison.Ordinal));
        await RefusedByEveryNodeAsync(pool, CheckpointPayload(pool, rewritten[^1]), CheckpointJustification(pool), rewritten, "ForkedLedger");

        // The nodes kept the true history: the genuine ledger still checkpoints on every node.
        await CheckpointOnEveryNodeAsync(pool);
    }

    [Fact]
    public async Task A_premium_without_an_admin_signature_is_refused_by_every_node_so_the_balance_cannot_be_raised()
    {
        var pool = await nodes.CreatePoolAsync();
        await CheckpointOnEveryNodeAsync(pool);

        // A coordinator that writes its database itself appends a premium nobody paid, well chained, and asks for a checkpoint over it.
        var forged = ForgedLedger.Chain(pool.Id, nodes.Clock.GetUtcNow(), nodes.Engine.LedgerEntries(pool.Id),
            [(LedgerEntry.Premium, RegistryChange.Premium("bob", 900_000, "pay-forged"))]);
        var refusals = await RefusedByEveryNodeAsync(pool, CheckpointPayload(pool, forged[^1]), CheckpointJustification(pool), forged, "UnsignedRegistryChange");
        Assert.All(refusals, f => Assert.Contains("(premium): no valid admin signature", f.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_checkpoint_over_a_hash_that_is_not_the_head_is_refused_by_every_node()
    {
        var pool = await nodes.CreatePoolAsync();
        await CheckpointOnEveryNodeAsync(pool);
        var entries = nodes.Engine.LedgerEntries(pool.Id);

        // The head's sequence number with the previous entry's hash.
        var notHead = LedgerCheckpoint.Payload(pool.Id, entries[^1].Sequence, entries[^2].Hash, LedgerEntry.FormatTime(nodes.Clock.GetUtcNow()));
        var refusals = await RefusedByEveryNodeAsync(pool, notHead, CheckpointJustification(pool), entries, "CheckpointNotHead");
        Assert.All(refusals, f => Assert.Contains($"the node's verified head is {entries[^1].Sequence}", f.Detail, StringComparison.Ordinal));
    }

    /// <summary>A pool with a flood stored: the engine opened and approved a claim; its payout request as the engine builds it.</summary>
    private async Task<(TestPool Pool, byte[] Payload, JsonObject Justification)> ApprovedClaimAsync()
    {
        var pool = await nodes.CreatePoolAsync();
        var (payload, justification) = await ClaimRequestAsync(pool);
        return (pool, payload, justification);
    }

    private async Task<(byte[] Payload, JsonObject Justification)> ClaimRequestAsync(TestPool pool)
    {
        await nodes.StoreAsync(pool, pool.Device.Leak(GuardedNodes.Start, wetMinutes: 12));
        var claim = Assert.Single(nodes.Engine.ListClaims(pool.Id));
        Assert.Equal("approved", claim.Status);
        var first = claim.Evidence[0]!["seq"]!.GetValue<long>();
        var last = claim.Evidence[^1]!["seq"]!.GetValue<long>();
        var records = nodes.Engine.Evidence(pool.Device.Id, first - 1, (int)(last - first + 2)).Select(e => e.Cose);
        return (PayoutInstruction.Payload(claim, "EUR"), GuardedNodes.Justification(pool, records));
    }

    /// <summary>A genuine checkpoint over the engine's head, signed through both quorums that together cover all three nodes: every replica learns the ledger.</summary>
    private async Task CheckpointOnEveryNodeAsync(TestPool pool)
    {
        var entries = nodes.Engine.LedgerEntries(pool.Id);
        foreach (var kid in CoveringKids())
        {
            var context = new SigningContext(CheckpointJustification(pool), after => ForgedLedger.Segment(entries, after));
            var (_, signature) = await nodes.Signer.SignJwsAsync(nodes.Key, CheckpointPayload(pool, entries[^1]), kid, context, CancellationToken.None);
            Assert.Equal(kid, signature.Kid);
        }
    }

    /// <summary>
    /// Sends the request through the two quorums that cover all three nodes (a refused quorum rules its
    /// members out, so one call never reaches the third node) and checks that each node refused it with
    /// <paramref name="code"/>: in the coordinator's error, and as a refused line in its audit log (chain verified).
    /// The ledger segment is <paramref name="ledger"/> after the node's head, or after <paramref name="sendFrom"/> when given.
    /// </summary>
    private async Task<List<CustodianFailure>> RefusedByEveryNodeAsync(TestPool pool, byte[] payload, JsonObject justification, IReadOnlyList<LedgerEntry> ledger, string code, long? sendFrom = null)
    {
        var failures = new List<CustodianFailure>();
        var sent = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var kid in CoveringKids())
        {
            var context = new SigningContext(justification.DeepClone().AsObject(), after => ForgedLedger.Segment(ledger, sendFrom ?? after));
            var refused = await Assert.ThrowsAsync<ThresholdSigningException>(() => nodes.Signer.SignJwsAsync(nodes.Key, payload, kid, context, CancellationToken.None));
            var quorum = nodes.Key.Quorums.Single(q => q.Kid == kid).Members;
            foreach (var member in quorum)
            {
                var failure = Assert.Single(refused.Failures, f => f.Custodian == member);
                Assert.Equal(CustodianFailureReason.Refused, failure.Reason);
                Assert.Equal(code, failure.Code);
                Assert.Contains($"{member}: Refused {code} (", refused.Message, StringComparison.Ordinal);
                failures.Add(failure);
                var input = Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(Jws.SigningInput(kid, payload))));
                (sent.TryGetValue(member, out var list) ? list : sent[member] = []).Add(input);
            }
        }

        Assert.Equal(nodes.Names.Order(), sent.Keys.Order());
        for (var i = 0; i < nodes.Names.Count; i++)
        {
            var lines = nodes.VerifiedAudit(i);
            foreach (var input in sent[nodes.Names[i]])
            {
                var line = lines.Last(l => Text(l["request"]?["signing_input_sha256"]) == input);
                Assert.Equal("sign", Text(line["op"]));
                Assert.Equal(pool.Id, Text(line["request"]!["pool"]));
                Assert.Equal("refused", Text(line["outcome"]!["result"]));
                Assert.Equal(code, Text(line["outcome"]!["code"]));
            }
        }

        return failures;
    }

    /// <summary>The kid of a quorum without the TPM node and of one with it: together every node.</summary>
    private string[] CoveringKids() =>
        [nodes.Key.Quorums.First(q => !q.Members.Contains(nodes.Names[2])).Kid, nodes.Key.Quorums.First(q => q.Members.Contains(nodes.Names[2])).Kid];

    private byte[] CheckpointPayload(TestPool pool, LedgerEntry head) =>
        LedgerCheckpoint.Payload(pool.Id, head.Sequence, head.Hash, LedgerEntry.FormatTime(nodes.Clock.GetUtcNow()));

    private static JsonObject CheckpointJustification(TestPool pool) => new() { ["pool"] = pool.Id, ["purpose"] = "checkpoint" };

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
