using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Claims.Tests.Claims;

/// <summary>The claims engine's contract, run against every database it supports (SQLite file, PostgreSQL server).</summary>
public abstract class ClaimsFlowContract(PoolKeyFixture key)
{
    protected PoolKeyFixture Key => key;

    // Recent, whole milliseconds (the wire's precision): the engine refuses records more than 7 days
    // before their arrival (EvidenceTimeLimits), and these arrive now.
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddHours(-6).ToUnixTimeMilliseconds());

    /// <summary>A new, empty database: what <see cref="ClaimsDatabase.Open"/> takes (a file path or a connection string).</summary>
    protected abstract string NewDatabase();

    [Fact]
    public async Task A_leak_of_ten_minutes_yields_one_claim_and_one_payout_that_verifies_with_the_pool_jwks()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);

        var records = Leak("dev-1", minutes: 15);
        var outcomes = await engine.StoreAsync(records, default);
        Assert.All(outcomes, o => Assert.Equal(StoreOutcome.Stored, o));

        var claim = Assert.Single(engine.ListClaims());
        Assert.Equal("approved", claim.Status);
        Assert.Equal(2, claim.StartSequence);
        Assert.Equal(11, claim.Evidence.Count);

        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
        Assert.Equal(0, await engine.ProcessPayoutsAsync(default));
        var payout = Assert.Single(engine.ListPayouts());
        Assert.Equal("paid", Assert.Single(engine.ListClaims()).Status);

        var jwks = engine.Signer.Jwks(key.KeyName);
        Assert.True(Jws.TryParse(payout.Jws, out var jws));
        var jwk = jwks["keys"]!.AsArray().Single(k => k!["kid"]!.GetValue<string>() == jws.Kid);
        Assert.True(Jws.Verify(jws, ShareVault.Hardware.RsaPublicKey.FromJwk(jwk!)));
        var instruction = JsonNode.Parse(jws.Payload)!.AsObject();
        Assert.Equal(claim.Id, instruction["claim"]!.GetValue<string>());
        Assert.Equal(25000, instruction["amount"]!.GetValue<long>());
        Assert.Equal("EUR", instruction["currency"]!.GetValue<string>());
        Assert.Equal(TriggerRule.Parse("water_leak == 1 for 10m").HashHex, instruction["rule_hash"]!.GetValue<string>());
        Assert.Equal(records.Skip(2).Take(11).Select(r => Convert.ToHexStringLower(r.Hash)), instruction["evidence"]!.AsArray().Select(e => e!.GetValue<string>()));
        Assert.Equal(Encoding.UTF8.GetString(jws.Payload), ShareVault.Claims.Ledger.CanonicalJson.SerializeToString(instruction));
    }

    [Fact]
    public async Task A_quiet_sequence_yields_no_claim()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var quiet = Enumerable.Range(0, 60).Select(i => Record("dev-1", i, T0.AddMinutes(i), new Reading("water_leak", null, 0, T0.AddMinutes(i)))).ToList();
        await engine.StoreAsync(quiet, default);
        Assert.Empty(engine.ListClaims());
        Assert.Equal(0, await engine.ProcessPayoutsAsync(default));
    }

    [Fact]
    public async Task Replayed_and_reordered_records_never_change_the_decision()
    {
        var records = Leak("dev-1", minutes: 15);
        var shuffled = records.OrderBy(_ => Random.Shared.Next()).ToList();
        var claims = new List<string>();
        foreach (var order in new VerifiedRecord[][] { records, [.. shuffled], [.. records, .. records] })
        {
            using var db = ClaimsDatabase.Open(NewDatabase());
            using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
            await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
            foreach (var chunk in order.Chunk(3))
            {
                await engine.StoreAsync(chunk, default);
            }

            var claim = Assert.Single(engine.ListClaims());
            // The records decided on, by sequence and hash (each also carries when it arrived, which differs by delivery).
            claims.Add(claim.Id + " " + string.Join(",", claim.Evidence.Select(e => $"{e!["seq"]}:{e["sha256"]}")));
        }

        Assert.Single(claims.Distinct());
    }

    [Fact]
    public async Task A_replayed_record_is_a_duplicate_and_a_different_record_under_a_used_sequence_number_is_a_conflict()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var first = Record("dev-1", 0, T0, new Reading("water_leak", null, 0, T0));
        var forged = Record("dev-1", 0, T0, new Reading("water_leak", null, 1, T0));
        Assert.Equal([StoreOutcome.Stored], await engine.StoreAsync([first], default));
        Assert.Equal([StoreOutcome.Duplicate, StoreOutcome.Conflict], await engine.StoreAsync([first, forged], default));
    }

    [Fact]
    public async Task Within_one_large_batch_the_first_record_under_a_sequence_number_is_stored_and_later_ones_are_duplicates_or_conflicts()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var records = Enumerable.Range(0, 300).Select(s => Record("dev-1", s, T0.AddSeconds(s), new Reading("water_leak", null, 0, T0.AddSeconds(s)))).ToList();

        // Repeats on both sides of PostgreSQL's 256-command insert batches, in both orders.
        VerifiedRecord[] batch = [.. records[..200], records[5], Record("dev-1", 7, T0, new Reading("water_leak", null, 1, T0)), .. records[200..], records[299], records[3]];
        var outcomes = await engine.StoreAsync(batch, default);
        Assert.Equal([.. Enumerable.Repeat(StoreOutcome.Stored, 200), StoreOutcome.Duplicate, StoreOutcome.Conflict, .. Enumerable.Repeat(StoreOutcome.Stored, 100), StoreOutcome.Duplicate, StoreOutcome.Duplicate], outcomes);
        Assert.Equal(300, engine.EvidenceCount());
        Assert.Equal(records[7].Hash, engine.EvidenceRecord("dev-1", 7)!.Hash);
    }

    [Fact]
    public async Task Claims_that_need_votes_wait_for_members_and_can_be_declined()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 2);
        await engine.AddMemberAsync("pool-1", "carol", "Carol", default);
        await engine.StoreAsync(Leak("dev-1", 12), default);
        var claim = Assert.Single(engine.ListClaims());
        Assert.Equal("opened", claim.Status);
        Assert.Equal(0, await engine.ProcessPayoutsAsync(default));
        Assert.Equal(ClaimsError.Conflict, (await Assert.ThrowsAsync<ClaimsException>(() => engine.VoteAsync(claim.Id, "alice", true, default))).Error);
        Assert.Equal("opened", await engine.VoteAsync(claim.Id, "bob", true, default));
        Assert.Equal(ClaimsError.AlreadyExists, (await Assert.ThrowsAsync<ClaimsException>(() => engine.VoteAsync(claim.Id, "bob", true, default))).Error);
        Assert.Equal("approved", await engine.VoteAsync(claim.Id, "carol", true, default));
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
    }

    [Fact]
    public async Task A_payout_waits_until_premiums_cover_it()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0, premium: 1000);
        await engine.StoreAsync(Leak("dev-1", 12), default);
        Assert.Equal(0, await engine.ProcessPayoutsAsync(default));
        await engine.RecordPremiumAsync("pool-1", "bob", 30000, default);
        Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
        Assert.Equal(1000 + 30000 - 25000, engine.GetPool("pool-1")!.Balance);
    }

    [Fact]
    public async Task Restarting_on_the_same_database_keeps_the_episode_and_pays_nothing_twice()
    {
        var path = NewDatabase();
        var records = Leak("dev-1", 15);
        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
            await engine.StoreAsync(records[..8], default);
            Assert.Empty(engine.ListClaims());
        }

        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await engine.StoreAsync(records[8..], default);
            Assert.Single(engine.ListClaims());
            Assert.Equal(1, await engine.ProcessPayoutsAsync(default));
        }

        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await engine.StoreAsync(records, default);
            Assert.Equal(0, await engine.ProcessPayoutsAsync(default));
            Assert.Single(engine.ListClaims());
            Assert.Single(engine.ListPayouts());
        }
    }

    [Fact]
    public async Task A_gap_holds_evaluation_until_it_is_filled_or_times_out()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), clock, new ClaimsOptions { GapTimeout = TimeSpan.FromMinutes(2) });
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var records = Leak("dev-1", 15);
        var missing = records[5];
        await engine.StoreAsync([.. records.Where(r => r != missing)], default);
        Assert.Empty(engine.ListClaims());
        Assert.Equal((5L, 5L), engine.Gaps("dev-1").Select(g => (g.From, g.To)).Single());

        clock.Advance(TimeSpan.FromMinutes(3));
        await engine.AdvancePastStaleGapsAsync(default);
        Assert.Single(engine.ListClaims());
        Assert.NotNull(engine.Gaps("dev-1").Single().SkippedAt);
    }

    [Fact]
    public async Task A_gap_that_narrows_before_it_times_out_skips_only_the_records_still_missing()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), clock, new ClaimsOptions { GapTimeout = TimeSpan.FromMinutes(2) });
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var records = Leak("dev-1", 15);
        await engine.StoreAsync([.. records.Where(r => r.Sequence is not (5 or 6))], default);
        Assert.Equal((5L, 6L), engine.Gaps("dev-1").Select(g => (g.From, g.To)).Single());

        await engine.StoreAsync([records[6]], default);
        clock.Advance(TimeSpan.FromMinutes(3));
        await engine.AdvancePastStaleGapsAsync(default);

        var gap = engine.Gaps("dev-1").Single();
        Assert.Equal((5L, 5L), (gap.From, gap.To));
        Assert.NotNull(gap.SkippedAt);
        Assert.Contains(6L, Assert.Single(engine.ListClaims()).Evidence.Select(e => e!["seq"]!.GetValue<long>()));
    }

    [Fact]
    public async Task Two_instances_sharing_one_database_split_a_stream_and_decide_as_one()
    {
        var target = NewDatabase();
        var records = Chain(Leak("dev-1", 15));
        using var dbA = ClaimsDatabase.Open(target);
        using var serviceA = new ClaimsEngine(dbA, key.Signer(), TimeProvider.System);
        using var dbB = ClaimsDatabase.Open(target);
        using var serviceB = new ClaimsEngine(dbB, key.Signer(), TimeProvider.System); // started before the device was enrolled
        await SetUpPoolAsync(serviceA, key.KeyName, "water_leak == 1 for 10m", votes: 0);

        // Round-robin, as an MQTT shared subscription hands messages out, in small batches that race.
        var chunks = records.Chunk(2).ToList();
        await Task.WhenAll(chunks.Select((chunk, i) => (i % 2 == 0 ? serviceA : serviceB).StoreAsync(chunk, default)));

        var claim = Assert.Single(serviceB.ListClaims());
        Assert.Equal(2, claim.StartSequence);
        Assert.Equal(records.Skip(2).Take(11).Select(r => Convert.ToHexStringLower(r.Hash)), claim.Evidence.Select(e => e!["sha256"]!.GetValue<string>()));
        Assert.Equal(records.Length - 1, serviceA.ListDevices().Single().EvaluatedSequence);

        var paid = await Task.WhenAll(serviceA.ProcessPayoutsAsync(default), serviceB.ProcessPayoutsAsync(default));
        Assert.Equal(1, paid.Sum());
        Assert.Single(serviceA.ListPayouts());
        var entries = serviceA.LedgerEntries("pool-1");
        Assert.Equal(Enumerable.Range(1, entries.Count).Select(i => (long)i), entries.Select(e => e.Sequence));
        Assert.Single(entries, e => e.Kind == ShareVault.Claims.Ledger.LedgerEntry.Payout);
    }

    [Fact]
    public async Task A_policy_issued_by_another_process_applies_to_the_running_service_from_the_next_record()
    {
        var target = NewDatabase();
        var records = Leak("dev-1", 15);
        using var serviceDb = ClaimsDatabase.Open(target);
        using var service = new ClaimsEngine(serviceDb, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(service, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        await service.StoreAsync(records[..2], default); // dry

        using (var cliDb = ClaimsDatabase.Open(target))
        using (var cli = new ClaimsEngine(cliDb, key.Signer(), TimeProvider.System))
        {
            await cli.IssuePolicyAsync("pool-1", "alice", "pol-alice-instant", "water_leak == 1", 1_000, 0, null, default);
        }

        await service.StoreAsync(records[2..], default);
        var claims = service.ListClaims();
        Assert.Equal(["pol-alice-flood", "pol-alice-instant"], claims.Select(c => c.PolicyId).Order());
        Assert.Equal(2, claims.Single(c => c.PolicyId == "pol-alice-instant").StartSequence);
    }

    [Fact]
    public async Task A_device_enrolled_by_another_process_is_known_to_the_running_service_within_a_second()
    {
        var target = NewDatabase();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var serviceDb = ClaimsDatabase.Open(target);
        using var service = new ClaimsEngine(serviceDb, key.Signer(), clock);
        await SetUpPoolAsync(service, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        using var newKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Null(service.Device("dev-new"));
        Assert.Null(service.Device("dev-later"));

        using (var cliDb = ClaimsDatabase.Open(target))
        using (var cli = new ClaimsEngine(cliDb, key.Signer(), TimeProvider.System))
        {
            await cli.EnrollDeviceAsync("pool-1", "alice", "dev-new", newKey.ExportSubjectPublicKeyInfo(), default);
        }

        Assert.Null(service.Device("dev-new")); // asked a moment ago: answered from memory
        clock.Advance(TimeSpan.FromSeconds(1.5));
        var device = service.Device("dev-new");
        Assert.NotNull(device);
        Assert.Equal(newKey.ExportSubjectPublicKeyInfo(), device.PublicKey);
        Assert.Null(service.Device("dev-later"));
    }

    [Fact]
    public async Task A_record_that_breaks_the_hash_chain_is_kept_but_never_evaluated()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var records = Chain(Leak("dev-1", 15));
        var forked = records[5] with { PreviousHash = SHA256.HashData("not the predecessor"u8) };
        records[5] = forked;

        Assert.All(await engine.StoreAsync(records, default), o => Assert.Equal(StoreOutcome.Stored, o));

        var chainBreak = Assert.Single(engine.ChainBreaks("dev-1"));
        Assert.Equal(5, chainBreak.Sequence);
        Assert.Equal(Convert.ToHexStringLower(records[4].Hash), chainBreak.Expected);
        Assert.Equal(1, engine.ChainBreakCount);
        Assert.Equal(records.Length, engine.Evidence("dev-1").Count);
        var claim = Assert.Single(engine.ListClaims());
        Assert.DoesNotContain(5L, claim.Evidence.Select(e => e!["seq"]!.GetValue<long>()));
        Assert.Equal([2L, 3, 4, 6, 7, 8, 9, 10, 11, 12], claim.Evidence.Select(e => e!["seq"]!.GetValue<long>()));
    }

    [Fact]
    public async Task A_record_that_restarts_the_chain_midway_is_a_chain_break_even_when_it_arrives_before_its_predecessor()
    {
        using var db = ClaimsDatabase.Open(NewDatabase());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var records = Chain(Leak("dev-1", 15));
        records[6] = records[6] with { PreviousHash = [], ChainStart = true };

        await engine.StoreAsync([.. records.Where((_, i) => i != 5)], default); // 6 waits for 5 in the database
        await engine.StoreAsync([records[5]], default);

        Assert.Equal(6, Assert.Single(engine.ChainBreaks("dev-1")).Sequence);
        Assert.DoesNotContain(6L, Assert.Single(engine.ListClaims()).Evidence.Select(e => e!["seq"]!.GetValue<long>()));
    }

    [Fact]
    public async Task A_restarted_service_continues_from_the_stored_evaluator_state_without_replaying_evidence()
    {
        var target = NewDatabase();
        var records = Leak("dev-1", 15);
        using (var db = ClaimsDatabase.Open(target))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
            await engine.StoreAsync(records[..8], default);
        }

        // Remove the evidence the open episode was built from: only the stored state can remember it.
        using (var db = ClaimsDatabase.Open(target))
        {
            ClaimsDatabase.Execute(db.Writer, "DELETE FROM evidence WHERE seq < 8");
        }

        using (var db = ClaimsDatabase.Open(target))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await engine.StoreAsync(records[8..], default);
            var claim = Assert.Single(engine.ListClaims());
            Assert.Equal(records.Skip(2).Take(11).Select(r => Convert.ToHexStringLower(r.Hash)), claim.Evidence.Select(e => e!["sha256"]!.GetValue<string>()));
        }
    }

    [Fact]
    public async Task Two_instances_paying_at_once_never_pay_out_more_than_the_pool_holds()
    {
        var target = NewDatabase();
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var records = Leak("dev-1", 15);
        using var dbA = ClaimsDatabase.Open(target);
        using var dbB = ClaimsDatabase.Open(target);
        using var serviceB = new ClaimsEngine(dbB, key.Signer(), clock);

        // While instance A signs the payout it checked the balance for, instance B sees an older claim
        // approved and pays it: the pool holds 30 000, enough for one 25 000 payout, not two.
        var signer = new SignerWithHook(key.Signer());
        using var serviceA = new ClaimsEngine(dbA, signer, clock);
        await SetUpPoolAsync(serviceA, key.KeyName, "water_leak == 1 for 10m", votes: 1, premium: 30_000);
        await serviceA.StoreAsync(records[..14], default); // the flood claim opens and waits for a vote
        clock.Advance(TimeSpan.FromMinutes(1));
        await serviceA.IssuePolicyAsync("pool-1", "alice", "pol-alice-instant", "water_leak == 1", 25_000, 0, null, default);
        await serviceA.StoreAsync(records[14..], default); // the instant claim opens approved
        var voted = serviceA.ListClaims().Single(c => c.PolicyId == "pol-alice-flood");
        signer.BeforeSigning = async () =>
        {
            await serviceB.VoteAsync(voted.Id, "bob", true, default);
            Assert.Equal(1, await serviceB.ProcessPayoutsAsync(default));
        };

        await serviceA.ProcessPayoutsAsync(default);

        Assert.Single(serviceA.ListPayouts());
        Assert.True(serviceA.GetPool("pool-1")!.Balance >= 0);
    }

    internal static async Task SetUpPoolAsync(ClaimsEngine engine, string keyName, string rule, int votes, long premium = 100_000)
    {
        await engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", keyName, 50_000, default);
        await engine.AddMemberAsync("pool-1", "alice", "Alice", default);
        await engine.AddMemberAsync("pool-1", "bob", "Bob", default);
        await engine.IssuePolicyAsync("pool-1", "alice", "pol-alice-flood", rule, 25_000, votes, null, default);
        await engine.RecordPremiumAsync("pool-1", "alice", premium, default);
        using var device = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await engine.EnrollDeviceAsync("pool-1", "alice", "dev-1", device.ExportSubjectPublicKeyInfo(), default);
    }

    /// <summary>Dry for two minutes, then wet for <paramref name="minutes"/> minutes, one record a minute.</summary>
    internal static VerifiedRecord[] Leak(string device, int minutes) =>
        [.. Enumerable.Range(0, minutes + 2).Select(i => Record(device, i, T0.AddMinutes(i), new Reading("water_leak", null, i < 2 ? 0 : 1, T0.AddMinutes(i))))];

    /// <summary>Links each record to its predecessor's hash, as a device agent does.</summary>
    internal static VerifiedRecord[] Chain(VerifiedRecord[] records) =>
        [.. records.Select((r, i) => r with { PreviousHash = i == 0 ? [] : records[i - 1].Hash })];

    internal static VerifiedRecord Record(string device, long seq, DateTimeOffset time, params Reading[] readings)
    {
        var body = Encoding.UTF8.GetBytes($"{device}/{seq}/{string.Join(",", readings.Select(r => r.Value))}");
        return new VerifiedRecord(device, seq, time, SHA256.HashData(body), body, readings, ChainStart: seq == 0);
    }
}


[Collection(PoolKeyGroup.Name)]
public sealed class ClaimsFlowOnSqliteTests(PoolKeyFixture key) : ClaimsFlowContract(key)
{
    protected override string NewDatabase() => Key.NewDatabasePath();

    [Fact]
    public async Task A_schema_1_file_is_migrated_in_place_and_its_open_episode_rebuilt_from_the_evidence()
    {
        var path = NewDatabase();
        var records = Leak("dev-1", 15);
        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, Key.Signer(), TimeProvider.System))
        {
            await SetUpPoolAsync(engine, Key.KeyName, "water_leak == 1 for 10m", votes: 0);
            await engine.StoreAsync(records[..8], default);

            // Back to what a schema 1 build wrote: no evaluator state, no chain columns.
            ClaimsDatabase.Execute(db.Writer, """
                DROP TABLE evaluators; DROP TABLE chain_breaks;
                ALTER TABLE devices DROP COLUMN state_version; ALTER TABLE devices DROP COLUMN last_hash;
                ALTER TABLE evidence DROP COLUMN prev; UPDATE schema_info SET version=1;
                """);
        }

        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, Key.Signer(), TimeProvider.System))
        {
            Assert.Equal(2L, ClaimsDatabase.ToInt64(ClaimsDatabase.Scalar(db.Writer, null, "SELECT version FROM schema_info")));
            await engine.StoreAsync(records[8..], default);
            var claim = Assert.Single(engine.ListClaims());
            Assert.Equal(records.Skip(2).Take(11).Select(r => Convert.ToHexStringLower(r.Hash)), claim.Evidence.Select(e => e!["sha256"]!.GetValue<string>()));
        }
    }
}

[Collection(PoolKeyGroup.Name)]
public sealed class ClaimsFlowOnPostgreSqlTests(PoolKeyFixture key) : ClaimsFlowContract(key)
{
    protected override string NewDatabase() => ShareVault.TestSupport.PostgresServer.Shared.CreateDatabase();

    [Fact]
    public async Task A_service_whose_database_connection_was_cut_writes_again_on_the_next_batch()
    {
        var target = NewDatabase();
        var records = Leak("dev-1", 15);
        using var db = ClaimsDatabase.Open(target);
        using var engine = new ClaimsEngine(db, Key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(engine, Key.KeyName, "water_leak == 1 for 10m", votes: 0);
        await engine.StoreAsync(records[..4], default);

        // What a server restart, a failover or an idle-session timeout does to the writer connection.
        using (var admin = new Npgsql.NpgsqlConnection(target))
        {
            admin.Open();
            using var kill = new Npgsql.NpgsqlCommand("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=current_database() AND pid<>pg_backend_pid()", admin);
            kill.ExecuteNonQuery();
        }

        Assert.All(await engine.StoreAsync(records[4..], default), o => Assert.Equal(StoreOutcome.Stored, o));
        Assert.Single(engine.ListClaims());
    }

    /// <summary>
    /// Two instances split each device's stream as a shared subscription does (one gets the even
    /// records, the other the odd ones), so every batch fills gaps the other left and finds its
    /// cached evaluator state stale. The PostgreSQL round trips of a batch (Npgsql's commands and
    /// batches, counted by its ActivitySource) are then the same for 1 device as for 40 (each of
    /// its own member and policy): nothing is read or written per device or per member. Each device's records are all stored once and evaluated in order.
    /// </summary>
    [Fact]
    public async Task A_batch_costs_the_same_round_trips_for_one_device_as_for_forty_under_a_split_stream()
    {
        var one = await SplitStreamRoundTripsAsync(devices: 1);
        var forty = await SplitStreamRoundTripsAsync(devices: 40);
        Assert.Equal(one, forty);
        Assert.All(forty, n => Assert.InRange(n, 1, 12));
    }

    /// <summary>Round trips of each StoreAsync call of the split stream.</summary>
    private async Task<List<int>> SplitStreamRoundTripsAsync(int devices)
    {
        var target = NewDatabase();
        using var dbA = ClaimsDatabase.Open(target);
        using var dbB = ClaimsDatabase.Open(target);
        using var a = new ClaimsEngine(dbA, Key.Signer(), TimeProvider.System);
        using var b = new ClaimsEngine(dbB, Key.Signer(), TimeProvider.System);
        await SetUpPoolAsync(a, Key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var ids = Enumerable.Range(0, devices).Select(d => $"dev-{d:D2}").ToList();
        foreach (var id in ids)
        {
            // A member and a policy per device, as households in a pool: nothing is read per member either.
            var member = "m-" + id;
            await a.AddMemberAsync("pool-1", member, member, default);
            await a.IssuePolicyAsync("pool-1", member, "pol-" + id, "water_leak == 1 for 10m", 1_000, 0, null, default);
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await a.EnrollDeviceAsync("pool-1", member, id, key.ExportSubjectPublicKeyInfo(), default);
        }

        // Dry records (no claim opens: a claim is a write of its own), chained as an agent chains them.
        var chains = ids.ToDictionary(id => id, id => Chain([.. Enumerable.Range(0, 8).Select(i => Record(id, i, DateTimeOffset.UtcNow.AddMinutes(i - 30), new Reading("water_leak", null, 0, DateTimeOffset.UtcNow.AddMinutes(i - 30))))]));
        var counts = new List<int>();
        for (var seq = 0; seq < 8; seq += 2)
        {
            // Odd records to B, the even ones to A, B's batch first: it waits at a gap that A's then fills
            // (A reads the neighbours B stored and evaluates B's records from the database).
            foreach (var (engine, s) in new[] { (b, seq + 1), (a, seq) })
            {
                var batch = ids.Select(id => chains[id][s]).ToList();
                var (outcomes, roundTrips) = await CountRoundTripsAsync(() => engine.StoreAsync(batch, default));
                Assert.All(outcomes, o => Assert.Equal(StoreOutcome.Stored, o));
                counts.Add(roundTrips);
            }
        }

        using var reader = dbA.OpenReader();
        Assert.Equal(8L * devices, ClaimsDatabase.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(*) FROM evidence")));
        Assert.Equal(7L * devices, ClaimsDatabase.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COALESCE(SUM(evaluated_seq),0) FROM devices WHERE id<>'dev-1'")));
        Assert.Empty(a.ChainBreaks());
        Assert.All(ids, id => Assert.All(a.Gaps(id), g => Assert.Equal((g.From, g.From), (g.From, g.To))));
        return counts;
    }

    /// <summary>Runs <paramref name="store"/> under an activity of its own and counts the Npgsql command/batch activities beneath it.</summary>
    private static async Task<(T Result, int RoundTrips)> CountRoundTripsAsync<T>(Func<Task<T>> store)
    {
        using var source = new System.Diagnostics.ActivitySource("ShareVault.Claims.Tests.RoundTrips");
        var count = 0;
        System.Diagnostics.Activity? parent = null;
        using var listener = new System.Diagnostics.ActivityListener
        {
            ShouldListenTo = s => s.Name == "Npgsql" || s == source,
            Sample = (ref System.Diagnostics.ActivityCreationOptions<System.Diagnostics.ActivityContext> _) => System.Diagnostics.ActivitySamplingResult.AllData,
            ActivityStopped = activity =>
            {
                if (activity.Source.Name == "Npgsql" && parent is not null && activity.TraceId == parent.TraceId)
                {
                    Interlocked.Increment(ref count);
                }
            },
        };
        System.Diagnostics.ActivitySource.AddActivityListener(listener);
        using (parent = source.StartActivity("store"))
        {
            Assert.NotNull(parent);
            var result = await store();
            return (result, Volatile.Read(ref count));
        }
    }
}
