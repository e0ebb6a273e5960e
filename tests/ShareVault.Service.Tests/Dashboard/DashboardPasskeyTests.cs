using System.Text.Json.Nodes;
using Microsoft.Playwright;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;
using ShareVault.Service.Tests.Http;

namespace ShareVault.Service.Tests.Dashboard;

/// <summary>
/// The dashboard in a real headless Chromium with a virtual authenticator: a member joins with a
/// passkey, sees the flooded home's claim and its evidence chart, votes with the passkey, and the
/// vote verifies offline in the ledger export; a second vote, a vote as someone else and anonymous
/// writes are refused.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class DashboardPasskeyTests(PoolKeyFixture key, ChromiumBrowser chromium) : IClassFixture<ChromiumBrowser>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_member_joins_with_a_passkey_votes_on_the_flooded_homes_claim_and_the_vote_verifies_in_the_export()
    {
        await using var pool = await MemberPool.StartAsync(key, votesRequired: 2);
        var claimId = pool.ClaimId;
        var invitation = (await MemberPool.PostAsync(await pool.OperatorAsync(), "/pools/pool-1/invitations", new JsonObject { ["member"] = "dave", ["name"] = "Dave" }))["invitation"]!.GetValue<string>();
        var (context, page) = await chromium.NewPageWithAuthenticatorAsync();
        await using var _ = context;
        var origin = $"http://localhost:{pool.Host.HttpAddress!.Port}";

        // Join: the passkey is created, then signs the member_joined action; the page logs in with it.
        await page.GotoAsync($"{origin}/dashboard/#/me");
        await ChromiumBrowser.ScreenshotAsync(page, "login");
        await page.Locator("#join-form input[name=pool]").FillAsync("pool-1");
        await page.Locator("#join-form input[name=invitation]").FillAsync(invitation);
        await page.Locator("[data-test=join]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-test=msg-ok]")).ToContainTextAsync("Logged in as dave", new() { Timeout = (float)Wait.TotalMilliseconds });
        var dave = pool.Host.Engine.MemberKeyOf("pool-1", "dave");
        Assert.NotNull(dave?.WebAuthn);
        Assert.Equal(origin, dave!.WebAuthn!.Origin);

        // The pool, and the ledger's checkpoints.
        await page.GotoAsync($"{origin}/dashboard/#/");
        await Assertions.Expect(page.Locator("[data-test=members]")).ToContainTextAsync("passkey");
        await Assertions.Expect(page.Locator("[data-test=balance]")).ToContainTextAsync("800.00 EUR");
        await ChromiumBrowser.ScreenshotAsync(page, "pool");

        // The flooded home's claim: its evidence chart and decision trail; dave approves with the passkey.
        await page.GotoAsync($"{origin}/dashboard/#/claims");
        await Assertions.Expect(page.Locator("[data-test=claims]")).ToContainTextAsync(claimId);
        await ChromiumBrowser.ScreenshotAsync(page, "claims");
        await page.GotoAsync($"{origin}/dashboard/#/claims/{claimId}");
        await Assertions.Expect(page.Locator("[data-test=chart-water_leak] polyline")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("[data-test=trail]")).ToContainTextAsync("opened");
        await page.Locator("[data-test=approve]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-test=trail]")).ToContainTextAsync("dave voted to approve (passkey signature)", new() { Timeout = (float)Wait.TotalMilliseconds });
        await Assertions.Expect(page.Locator("[data-test=claim-status]")).ToHaveTextAsync("opened"); // one of two votes
        await Assertions.Expect(page.Locator("[data-test=approve]")).ToHaveCountAsync(0); // no second vote offered
        await ChromiumBrowser.ScreenshotAsync(page, "claim");

        // Not twice, not as someone else: the page's own session, through the API.
        var twice = await VoteFromPageAsync(page, claimId, member: null);
        Assert.Equal(409, twice);
        var asCarol = await VoteFromPageAsync(page, claimId, member: "carol");
        Assert.Equal(403, asCarol);

        // carol's key-file vote decides; the page follows live (server-sent events) to the payout.
        var carol = await pool.MemberAsync("carol");
        await MemberPool.PostAsync(carol, $"/claims/{claimId}/votes", new JsonObject
        {
            ["approve"] = true,
            ["member_sig"] = pool.Sign("carol", LedgerEntry.Vote, RegistryChange.Vote(claimId, "carol", true)),
        });
        await Assertions.Expect(page.Locator("[data-test=claim-status]")).ToHaveTextAsync("paid", new() { Timeout = (float)Wait.TotalMilliseconds });

        // The export carries dave's passkey-signed vote, and verifies offline.
        Assert.NotNull(await pool.Host.Engine.CheckpointAsync("pool-1", force: true, default));
        var export = LedgerExport.ToText(pool.Host.Engine.ExportLedger("pool-1"));
        var verification = LedgerVerifier.Verify(export);
        Assert.True(verification.IsValid, verification.Detail);
        var vote = JsonNode.Parse(export)!["entries"]!.AsArray().Single(e => e!["kind"]!.GetValue<string>() == LedgerEntry.Vote && e["body"]!["member"]!.GetValue<string>() == "dave")!;
        Assert.NotNull(vote["body"]![MemberSignature.Field]!["webauthn"]);

        await page.GotoAsync($"{origin}/dashboard/#/ledger");
        await Assertions.Expect(page.Locator("[data-test=checkpoints] tr")).Not.ToHaveCountAsync(1);
        await ChromiumBrowser.ScreenshotAsync(page, "ledger");
    }

    [Fact]
    public async Task A_passkey_member_logs_in_again_enrols_a_device_and_sees_its_readings_live_while_anonymous_writes_are_refused()
    {
        await using var pool = await MemberPool.StartAsync(key);
        var invitation = (await MemberPool.PostAsync(await pool.OperatorAsync(), "/pools/pool-1/invitations", new JsonObject { ["member"] = "erin", ["name"] = "Erin" }))["invitation"]!.GetValue<string>();
        var (context, page) = await chromium.NewPageWithAuthenticatorAsync();
        await using var _ = context;
        var origin = $"http://localhost:{pool.Host.HttpAddress!.Port}";

        // Logged out: the claim shows, but no vote button; writes from the page are 401.
        await page.GotoAsync($"{origin}/dashboard/#/claims/{pool.ClaimId}");
        await Assertions.Expect(page.Locator("[data-test=chart-water_leak]")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("[data-test=approve]")).ToHaveCountAsync(0);
        Assert.Equal(401, await VoteFromPageAsync(page, pool.ClaimId, member: "bob"));
        Assert.Equal(401, await page.EvaluateAsync<int>("async () => (await fetch('/pools', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: 'x', name: 'x', currency: 'EUR', key: 'k', maxPayout: 1 }) })).status"));
        Assert.Equal(401, await page.EvaluateAsync<int>($"async () => (await fetch('/devices/{pool.Device.Id}/evidence')).status"));

        // A passkey member logs in again after joining (a second assertion, on a fresh session).
        await page.GotoAsync($"{origin}/dashboard/#/me");
        await page.Locator("#join-form input[name=pool]").FillAsync("pool-1");
        await page.Locator("#join-form input[name=invitation]").FillAsync(invitation);
        await page.Locator("[data-test=join]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-test=msg-ok]")).ToContainTextAsync("Logged in as erin", new() { Timeout = (float)Wait.TotalMilliseconds });
        await page.Locator("#logout").ClickAsync();
        await page.Locator("#login-form input[name=pool]").FillAsync("pool-1");
        await page.Locator("#login-form input[name=member]").FillAsync("erin");
        await page.Locator("[data-test=login]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-test=msg-ok]")).ToContainTextAsync("Logged in as erin", new() { Timeout = (float)Wait.TotalMilliseconds });

        // Another member's readings stay hidden from her.
        Assert.Equal(403, await page.EvaluateAsync<int>($"async () => (await fetch('/devices/{pool.Device.Id}/evidence', {{ headers: {{ Authorization: 'Bearer ' + sessionStorage.getItem('sv.token') }} }})).status"));

        // She enrols her own device, signing the enrolment with her passkey; its evidence then shows up live.
        await using var device = new SimulatedDevice("pi-erin-" + Guid.NewGuid().ToString("N")[..6]);
        await page.Locator("#device-form input[name=device]").FillAsync(device.Id);
        await page.Locator("#device-form textarea[name=key]").FillAsync(device.Key.ExportSubjectPublicKeyInfoPem());
        await page.Locator("[data-test=enrol]").ClickAsync();
        await Assertions.Expect(page.Locator("[data-test=msg-ok]")).ToContainTextAsync("enrolled with your signature", new() { Timeout = (float)Wait.TotalMilliseconds });
        var enrolment = pool.Host.Engine.LedgerEntries("pool-1").Single(e => e.Kind == LedgerEntry.DeviceEnrolled && e.Body["device"]!.GetValue<string>() == device.Id);
        Assert.NotNull(enrolment.Body[MemberSignature.Field]!["webauthn"]);
        var start = DateTimeOffset.UtcNow.AddMinutes(-20);
        await pool.Host.Ingest.ProcessBatchAsync([.. Enumerable.Range(0, 15).Select(i => device.Next(start.AddMinutes(i),
                new ShareVault.Evidence.Reading("temperature", "Cel", 18 + (i % 5), start.AddMinutes(i)), new ShareVault.Evidence.Reading("water_leak", null, 0, start.AddMinutes(i))))
            .Select(r => new ShareVault.Service.IncomingEvidence(ShareVault.Evidence.EvidenceTopics.Evidence(device.Id), r, device.Id))], default);
        await Assertions.Expect(page.Locator("[data-test=chart-temperature] polyline")).ToHaveCountAsync(1, new() { Timeout = (float)Wait.TotalMilliseconds });
        await ChromiumBrowser.ScreenshotAsync(page, "me");
        Assert.True(LedgerVerifier.Verify(LedgerExport.ToText(pool.Host.Engine.ExportLedger("pool-1")), new LedgerVerifyOptions { AcceptUnsignedTail = true }).IsValid);
    }

    /// <summary>POSTs a vote from inside the page with its session (if any), as the page's own code would; returns the HTTP status.</summary>
    private static Task<int> VoteFromPageAsync(IPage page, string claimId, string? member) =>
        page.EvaluateAsync<int>(@"async ([claim, member]) => {
            const token = sessionStorage.getItem('sv.token');
            const headers = { 'Content-Type': 'application/json' };
            if (token) headers.Authorization = 'Bearer ' + token;
            const body = { approve: true, member_sig: { kid: 'x', sig: 'e30..AA' } };
            if (member) body.member = member;
            return (await fetch('/claims/' + claim + '/votes', { method: 'POST', headers, body: JSON.stringify(body) })).status;
        }", new object?[] { claimId, member });
}
