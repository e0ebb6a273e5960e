using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Service;
using ShareVault.TestSupport;

namespace ShareVault.Cli.Tests;

/// <summary>
/// The local verbs that write a member action (<c>pool join</c>, <c>pool accept</c>, <c>device enroll</c>,
/// <c>pool vote</c>) sign with the member's key file, as the HTTP API does; in a pool whose members hold
/// keys an unsigned action, or one signed with another member's key, is refused.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class MemberCliTests(PoolKeyFixture key)
{
    [Fact]
    public async Task Members_sign_their_join_acceptance_enrolment_and_vote_on_the_cli_and_unsigned_actions_are_refused()
    {
        var dir = Path.Combine(key.DataDir, "members-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var db = Path.Combine(dir, "claims.db");
        async Task<ProcessRunner.Result> Run(params string[] args) => await CliRunner.RunAsync(key.DataDir, [.. args, "--db", db]);
        async Task<string> Ok(params string[] args)
        {
            var result = await Run(args);
            Assert.True(result.ExitCode == 0, $"sharevault {string.Join(' ', args)} failed: {result.StdErr}");
            return result.StdOut;
        }

        async Task Refused(string reason, params string[] args)
        {
            var result = await Run(args);
            Assert.True(result.ExitCode == 1, $"sharevault {string.Join(' ', args)} was not refused: {result.StdOut}");
            Assert.Contains(reason, result.StdErr, StringComparison.Ordinal);
        }

        var keyFiles = new Dictionary<string, string>(StringComparer.Ordinal);
        var keys = new Dictionary<string, MemberKey>(StringComparer.Ordinal);
        foreach (var member in new[] { "alice", "bob" })
        {
            keyFiles[member] = Path.Combine(dir, member + ".key");
            keys[member] = MemberKey.FromPem(await Ok("member", "key", "create", "--out", keyFiles[member]));
        }

        await Ok("pool", "create", "--pool", "sig-pool", "--name", "Riverside", "--key", key.KeyName, "--max-payout", "50000");
        await Ok("pool", "join", "--pool", "sig-pool", "--member", "alice", "--key", keyFiles["alice"]);
        await Refused("sign their actions", "pool", "join", "--pool", "sig-pool", "--member", "mallory"); // keyless, in a pool whose members sign
        await Ok("pool", "join", "--pool", "sig-pool", "--member", "bob", "--key", keyFiles["bob"]);
        await Ok("pool", "policy", "--pool", "sig-pool", "--member", "alice", "--policy", "sig-pol", "--rule", "water_leak == 1 for 10m", "--amount", "1000", "--votes", "1");
        await Ok("pool", "premium", "--pool", "sig-pool", "--member", "alice", "--amount", "5000");

        string[] accept = ["pool", "accept", "--pool", "sig-pool", "--member", "alice", "--policy", "sig-pol"];
        await Refused("holds a key", accept);
        await Refused("is not the one member 'alice' recorded", [.. accept, "--key", keyFiles["bob"]]);
        await Ok([.. accept, "--key", keyFiles["alice"]]);

        await using var device = new SimulatedDevice("pi-cli-" + Guid.NewGuid().ToString("N")[..6]);
        var devicePem = Path.Combine(dir, "device.pem");
        await File.WriteAllTextAsync(devicePem, PemEncoding.WriteString("PUBLIC KEY", device.PublicKey));
        string[] enroll = ["device", "enroll", "--pool", "sig-pool", "--member", "alice", "--device", device.Id, "--device-key", devicePem];
        await Refused("holds a key", enroll);
        await Ok([.. enroll, "--key", keyFiles["alice"]]);

        // The flood opens alice's claim (the service on the same database), which waits for one vote.
        string claim;
        await using (var host = await ClaimsHost.StartAsync(new ServiceOptions
        {
            DataDir = key.DataDir,
            DatabasePath = db,
            MqttPort = SimulatedDevice.FreePort(),
            MqttTlsPort = 0,
            HttpPort = null,
        }, key.Signer(), TimeProvider.System, default))
        {
            await host.Ingest.ProcessBatchAsync([.. device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12)
                .Select(r => new IncomingEvidence(EvidenceTopics.Evidence(device.Id), r, device.Id))], default);
            claim = Assert.Single(host.Engine.ListClaims("sig-pool")).Id;
        }

        string[] vote = ["pool", "vote", "--claim", claim, "--member", "bob"];
        await Refused("holds a key", vote);
        await Refused("is not the one member 'bob' recorded", [.. vote, "--key", keyFiles["alice"]]);
        Assert.Contains("approved", await Ok([.. vote, "--key", keyFiles["bob"]]), StringComparison.Ordinal);

        // Every member action in the ledger carries the member's signature over the canonical action, as the HTTP path writes it.
        using var direct = ClaimsDatabase.Open(db);
        using var reader = direct.OpenReader();
        using var query = ClaimsDatabase.Command(reader, null, "SELECT kind, body FROM ledger WHERE pool_id='sig-pool' ORDER BY seq");
        using var rows = query.ExecuteReader();
        var signed = new List<string>();
        while (rows.Read())
        {
            var kind = rows.GetString(0);
            if (kind is LedgerEntry.MemberJoined or LedgerEntry.PolicyAccepted or LedgerEntry.DeviceEnrolled or LedgerEntry.Vote)
            {
                var body = JsonNode.Parse(rows.GetString(1))!.AsObject();
                var member = body["member"]!.GetValue<string>();
                Assert.Equal(MemberCheck.Valid, MemberSignature.Verify("sig-pool", kind, body, keys[member]));
                signed.Add($"{kind}:{member}");
            }
        }

        Assert.Equal(["member_joined:alice", "member_joined:bob", "policy_accepted:alice", "device_enrolled:alice", "vote:bob"], signed);
    }
}
