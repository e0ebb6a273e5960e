using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Service.Tests.Http;

/// <summary>
/// Every write endpoint of the HTTP API: 401 without a token, 403 for the wrong operator or member,
/// and the happy path with the right one. (Logins, invitations' join and <c>/actions/hash</c> are
/// the anonymous writes by design: a challenge, its signed answer, an invitation code.)
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class WriteEndpointRoleTests(PoolKeyFixture key)
{
    [Fact]
    public async Task Creating_a_pool_needs_the_service_operator()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        JsonObject Body(string id) => new() { ["id"] = id, ["name"] = "New", ["currency"] = "EUR", ["key"] = key.KeyName, ["maxPayout"] = 1000 };
        await ExpectAsync(pool.Anonymous(), "/pools", Body("pool-3"), HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.MemberAsync("alice"), "/pools", Body("pool-3"), HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), "/pools", Body("pool-3"), HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(), "/pools", Body("pool-3"), HttpStatusCode.Created);
    }

    [Fact]
    public async Task Adding_a_member_needs_the_pools_operator_and_the_members_signature()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        using var dave = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var daveKey = MemberKey.FromSubjectPublicKeyInfo(dave.ExportSubjectPublicKeyInfo());
        var body = new JsonObject
        {
            ["id"] = "dave",
            ["name"] = "Dave",
            ["key"] = daveKey.ToPem(),
            ["member_sig"] = MemberSignature.Sign(dave, "pool-1", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("dave", "Dave", daveKey)),
        };
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/members", body, HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.MemberAsync("alice"), "/pools/pool-1/members", body, HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), "/pools/pool-1/members", body, HttpStatusCode.Forbidden);
        var operatorClient = await pool.OperatorAsync();
        var forged = body.DeepClone().AsObject();
        forged["member_sig"] = pool.Sign("alice", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("dave", "Dave", daveKey));
        await ExpectAsync(operatorClient, "/pools/pool-1/members", forged, HttpStatusCode.Forbidden); // not dave's own signature
        await ExpectAsync(operatorClient, "/pools/pool-1/members", body, HttpStatusCode.Created);
    }

    [Fact]
    public async Task Invitations_need_the_pools_operator_and_joining_needs_an_invitation()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        var invite = new JsonObject { ["member"] = "erin", ["name"] = "Erin" };
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/invitations", invite, HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.MemberAsync("bob"), "/pools/pool-1/invitations", invite, HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), "/pools/pool-1/invitations", invite, HttpStatusCode.Forbidden);
        var invitation = (await ExpectAsync(await pool.OperatorAsync(), "/pools/pool-1/invitations", invite, HttpStatusCode.Created))["invitation"]!.GetValue<string>();

        using var erin = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var erinKey = MemberKey.FromSubjectPublicKeyInfo(erin.ExportSubjectPublicKeyInfo());
        JsonObject Join(string code) => new()
        {
            ["invitation"] = code,
            ["key"] = erinKey.ToPem(),
            ["member_sig"] = MemberSignature.Sign(erin, "pool-1", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("erin", "Erin", erinKey)),
        };
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/join", Join("not-an-invitation"), HttpStatusCode.Unauthorized);
        await ExpectAsync(pool.Anonymous(), "/pools/pool-2/join", Join(invitation), HttpStatusCode.Unauthorized); // another pool's
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/join/passkey-options", new JsonObject { ["invitation"] = "nope" }, HttpStatusCode.Unauthorized);
        var wrongSigner = Join(invitation);
        wrongSigner["member_sig"] = pool.Sign("bob", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("erin", "Erin", erinKey));
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/join", wrongSigner, HttpStatusCode.Forbidden);
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/join", Join(invitation), HttpStatusCode.Created);
        await ExpectAsync(pool.Anonymous(), "/pools/pool-1/join", Join(invitation), HttpStatusCode.Unauthorized); // used up
        Assert.Equal(erinKey.Kid, pool.Host.Engine.MemberKeyOf("pool-1", "erin")!.Kid);
    }

    [Fact]
    public async Task Issuing_a_policy_and_recording_a_premium_need_the_pools_operator()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        var policy = new JsonObject { ["id"] = "pol-bob", ["member"] = "bob", ["rule"] = "water_leak == 1 for 10m", ["payoutAmount"] = 1000 };
        var premium = new JsonObject { ["member"] = "bob", ["amount"] = 500 };
        foreach (var (path, body) in new[] { ("/pools/pool-1/policies", policy), ("/pools/pool-1/premiums", premium) })
        {
            await ExpectAsync(pool.Anonymous(), path, body, HttpStatusCode.Unauthorized);
            await ExpectAsync(await pool.MemberAsync("bob"), path, body, HttpStatusCode.Forbidden);
            await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), path, body, HttpStatusCode.Forbidden);
            await ExpectAsync(await pool.OperatorAsync(), path, body, path.EndsWith("policies", StringComparison.Ordinal) ? HttpStatusCode.Created : HttpStatusCode.OK);
        }

        // pool-2's own administrator operates pool-2.
        await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), "/pools/pool-2/invitations", new JsonObject { ["member"] = "zoe" }, HttpStatusCode.Created);
    }

    [Fact]
    public async Task Accepting_a_policy_needs_its_member_and_their_signature()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        var ruleHash = pool.Host.Engine.ListPolicies("pool-1").Single().RuleHash;
        var action = RegistryChange.PolicyAccepted("pol-alice-flood", "alice", ruleHash);
        var body = new JsonObject { ["member_sig"] = pool.Sign("alice", LedgerEntry.PolicyAccepted, action) };
        const string path = "/pools/pool-1/policies/pol-alice-flood/accept";
        await ExpectAsync(pool.Anonymous(), path, body, HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.MemberAsync("bob"), path, body, HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(), path, body, HttpStatusCode.Forbidden); // an operator cannot accept in a member's name
        var alice = await pool.MemberAsync("alice");
        await ExpectAsync(alice, path, new JsonObject { ["member_sig"] = pool.Sign("bob", LedgerEntry.PolicyAccepted, action) }, HttpStatusCode.Forbidden);
        await ExpectAsync(alice, path, body, HttpStatusCode.OK);
        Assert.Contains("pol-alice-flood", pool.Host.Engine.AcceptedPolicies("pool-1"));
    }

    [Fact]
    public async Task Enrolling_a_device_needs_its_member_or_the_operator_and_the_members_signature()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        using var device = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = device.ExportSubjectPublicKeyInfo();
        JsonObject Body(string id, string signer) => new()
        {
            ["pool"] = "pool-1",
            ["member"] = "bob",
            ["id"] = id,
            ["publicKey"] = device.ExportSubjectPublicKeyInfoPem(),
            ["member_sig"] = pool.Sign(signer, LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(id, "bob", spki)),
        };
        await ExpectAsync(pool.Anonymous(), "/devices", Body("pi-bob-1", "bob"), HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.MemberAsync("alice"), "/devices", Body("pi-bob-1", "bob"), HttpStatusCode.Forbidden);
        await ExpectAsync(await pool.OperatorAsync(pool.OtherPoolAdmin, "pool-2"), "/devices", Body("pi-bob-1", "bob"), HttpStatusCode.Forbidden);
        var bob = await pool.MemberAsync("bob");
        await ExpectAsync(bob, "/devices", Body("pi-bob-1", "alice"), HttpStatusCode.Forbidden); // alice's signature for bob's device
        await ExpectAsync(bob, "/devices", Body("pi-bob-1", "bob"), HttpStatusCode.Created);
        await ExpectAsync(await pool.OperatorAsync(), "/devices", Body("pi-bob-2", "bob"), HttpStatusCode.Created);
    }

    [Fact]
    public async Task Voting_needs_the_member_themselves_once_with_their_signature()
    {
        await using var pool = await MemberPool.StartAsync(key);
        var claim = pool.ClaimId;
        JsonObject Vote(string signer, string? member = null) => new()
        {
            ["approve"] = true,
            ["member"] = member,
            ["member_sig"] = pool.Sign(signer, LedgerEntry.Vote, RegistryChange.Vote(claim, member ?? signer, true)),
        };
        var path = $"/claims/{claim}/votes";
        await ExpectAsync(pool.Anonymous(), path, Vote("bob"), HttpStatusCode.Unauthorized);
        await ExpectAsync(await pool.OperatorAsync(), path, Vote("bob", "bob"), HttpStatusCode.Forbidden); // no voting in a member's name
        var carol = await pool.MemberAsync("carol");
        await ExpectAsync(carol, path, Vote("bob", "bob"), HttpStatusCode.Forbidden); // acting for bob
        await ExpectAsync(carol, path, Vote("bob", "carol"), HttpStatusCode.Forbidden); // bob's signature on carol's vote
        await ExpectAsync(carol, path, new JsonObject { ["approve"] = true }, HttpStatusCode.Forbidden); // unsigned
        await ExpectAsync(await pool.MemberAsync("alice"), path, Vote("alice"), HttpStatusCode.Conflict); // the claimant
        var approved = await ExpectAsync(carol, path, Vote("carol"), HttpStatusCode.OK);
        Assert.Equal("approved", approved["status"]!.GetValue<string>());
        await ExpectAsync(carol, path, Vote("carol"), HttpStatusCode.Conflict); // twice
        var votes = pool.Host.Engine.LedgerEntries("pool-1").Where(e => e.Kind == LedgerEntry.Vote).ToList();
        Assert.Equal("carol", Assert.Single(votes).Body["member"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_members_readings_need_that_member_or_the_operator_and_tokens_expire_with_a_401()
    {
        await using var pool = await MemberPool.StartAsync(key);
        var path = new Uri($"/devices/{pool.Device.Id}/evidence", UriKind.Relative);
        Assert.Equal(HttpStatusCode.Unauthorized, (await pool.Anonymous().GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await (await pool.MemberAsync("bob")).GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await (await pool.MemberAsync("alice")).GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await (await pool.OperatorAsync()).GetAsync(path)).StatusCode);
        using var forged = pool.Anonymous();
        forged.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "made-up");
        var refused = await forged.GetAsync(path);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.Single().Scheme);

        // A challenge answered with another member's key does not log in.
        var challenge = await MemberPool.PostAsync(pool.Anonymous(), "/auth/challenge", new JsonObject { ["pool"] = "pool-1", ["member"] = "bob" });
        var signature = pool.Members["carol"].SignData(System.Text.Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        await ExpectAsync(pool.Anonymous(), "/auth/token", new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = ShareVault.Hardware.Base64Url.Encode(signature) }, HttpStatusCode.Unauthorized);

        // Pool figures stay public.
        Assert.Equal(HttpStatusCode.OK, (await pool.Anonymous().GetAsync(new Uri("/pools/pool-1", UriKind.Relative))).StatusCode);
    }

    private static async Task<JsonObject> ExpectAsync(HttpClient http, string path, JsonObject body, HttpStatusCode expected)
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"POST {path}: expected {(int)expected}, got {(int)response.StatusCode} {text}");
        return text.Length == 0 ? [] : JsonNode.Parse(text) as JsonObject ?? [];
    }
}
