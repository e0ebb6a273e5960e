using ShareVault.Claims.Ingest;
using ShareVault.Claims.Replay;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Claims.Tests.Replay;

/// <summary>The payout check shared by ledger verify and the custody node's guard, over real COSE records the engine decided on.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class PayoutReplayTests(PoolKeyFixture key)
{
    private const string Rule = "water_leak == 1 for 10m";

    // Recent: the engine refuses records far older than their arrival (EvidenceTimeLimits.MaxAge).
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(-6).ToUnixTimeSeconds());

    [Fact]
    public async Task The_claims_trigger_recomputes_from_its_records_and_any_change_to_them_is_named()
    {
        await using var device = new SimulatedDevice("dev-1");
        var records = device.Leak(T0, wetMinutes: 12);
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await engine.CreatePoolAsync("pool-1", "Riverside", "EUR", key.KeyName, 50_000, default);
        await engine.AddMemberAsync("pool-1", "alice", "Alice", default);
        await engine.IssuePolicyAsync("pool-1", "alice", "pol-1", Rule, 25_000, 0, null, default);
        await engine.EnrollDeviceAsync("pool-1", "alice", device.Id, device.PublicKey, default);
        await engine.StoreAsync([.. records.Select(c => Verified(c, device))], default);
        var claim = Assert.Single(engine.ListClaims());
        var listed = claim.Evidence.Select(e => (e!["seq"]!.GetValue<long>(), e["sha256"]!.GetValue<string>())).ToList();
        var bySeq = records.Select((c, i) => (c, i)).ToDictionary(x => (long)x.i, x => x.c);

        PayoutReplayResult Check(IReadOnlyList<(long, string)> claimed, Func<long, byte[]?> lookup) =>
            PayoutReplay.Check(device.Id, device.Key, Rule, RuleContext.Empty, claimed, lookup, "the test");

        Assert.True(Check(listed, bySeq.GetValueOrDefault).Fired);
        Assert.Equal(PayoutReplayProblem.MissingEvidence, Check(listed, s => s == listed[3].Item1 ? null : bySeq.GetValueOrDefault(s)).Problem);
        Assert.Equal(PayoutReplayProblem.HashDiffers, Check([.. listed.Select((x, i) => i == 2 ? (x.Item1, new string('0', 64)) : x)], bySeq.GetValueOrDefault).Problem);
        Assert.Equal(PayoutReplayProblem.NotFired, Check(listed[..^1], bySeq.GetValueOrDefault).Problem);
        await using var other = new SimulatedDevice("dev-1");
        var foreign = other.Leak(T0, wetMinutes: 12);
        Assert.Equal(PayoutReplayProblem.BadSignature, Check(listed, s => s == listed[5].Item1 ? foreign[(int)s] : bySeq.GetValueOrDefault(s)).Problem);
    }

    private static VerifiedRecord Verified(byte[] cose, SimulatedDevice device)
    {
        var v = EvidenceVerifier.Verify(cose, id => id == device.Id ? device.Key : null);
        Assert.True(v.IsValid, v.Detail);
        return new VerifiedRecord(v.Record!.DeviceId, v.Record.Sequence, v.Record.Time, v.Hash, cose, v.Record.Readings, v.Record.IsChainStart, v.Record.PreviousHash.ToArray());
    }
}
