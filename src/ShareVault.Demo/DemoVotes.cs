using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Service;

namespace ShareVault.Demo;

/// <summary>
/// The members' part of the demo, over the demo service's real HTTP API: two neighbours join the
/// pool with key files of their own (the operator invites them; each signs the join with the key it
/// records), the flooded home also holds a repair cover whose claims the neighbours decide
/// (<c>votes_required</c> 2), and once the flood has opened that claim each neighbour logs in with
/// their key (challenge-response), signs a vote and sends it. The decision names the two vote entries,
/// the payout follows, and the ledger step that comes after verifies every signature offline
/// (docs/members.md).
/// </summary>
internal sealed class DemoVotes(string outDir, DemoConsole console)
{
    public const string RepairPolicy = "repair-household-flood";
    public const long RepairPayout = 15_000;
    public const int VotesRequired = 2;
    private const string Claimant = "household-flood";
    private static readonly string[] Neighbours = ["household-north", "household-south"];

    private string MembersDir => Path.Combine(outDir, "members");

    /// <summary>
    /// Before the evidence flows: the neighbours join by invitation with their own key files, and the
    /// operator issues the repair cover decided by their votes (signed by the pool admin key, as every
    /// registry change the custody nodes accept).
    /// </summary>
    public Task JoinAsync(ClaimsHost host, DemoAdmin admin, CancellationToken cancellationToken) =>
        console.StepAsync("Neighbours join with key files of their own (HTTP API: the operator invites, each signs the join); a repair cover decided by their votes", async report =>
        {
            Directory.CreateDirectory(MembersDir);
            using var operatorHttp = await LoginAsync(host, admin.Key.Kid, text => admin.SignText(text), DemoRun.Pool, null, cancellationToken).ConfigureAwait(false);
            var lines = new List<string> { $"operator logged in with the pool admin key {admin.Key.Kid[..12]}… (challenge-response, bearer token)" };
            foreach (var neighbour in Neighbours)
            {
                using var key = MemberKeyFile(neighbour);
                var pem = MemberKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo()).ToPem();
                var invitation = await PostAsync(operatorHttp, $"/pools/{DemoRun.Pool}/invitations", new JsonObject { ["member"] = neighbour, ["name"] = neighbour }, cancellationToken)
                    .ConfigureAwait(false);
                var memberKey = MemberKey.FromPem(pem);
                using var anonymous = new HttpClient { BaseAddress = host.HttpAddress };
                await PostAsync(anonymous, $"/pools/{DemoRun.Pool}/join", new JsonObject
                {
                    ["invitation"] = invitation["invitation"]!.GetValue<string>(),
                    ["key"] = pem,
                    ["member_sig"] = MemberSignature.Sign(key, DemoRun.Pool, LedgerEntry.MemberJoined, RegistryChange.MemberJoined(neighbour, neighbour, memberKey)),
                }, cancellationToken).ConfigureAwait(false);
                report($"{neighbour} joined");
                lines.Add($"{neighbour}: key file members/{neighbour}.key (P-256, kid {memberKey.Kid[..12]}…), joined with the invitation, member_joined signed by that key");
            }

            var body = ClaimsEngine.PolicyBody(RepairPolicy, Claimant, DemoRun.LeakRule, RepairPayout, VotesRequired, null);
            await PostAsync(operatorHttp, $"/pools/{DemoRun.Pool}/policies", new JsonObject
            {
                ["id"] = RepairPolicy,
                ["member"] = Claimant,
                ["rule"] = DemoRun.LeakRule,
                ["payoutAmount"] = RepairPayout,
                ["votesRequired"] = VotesRequired,
                ["admin"] = admin.Sign(LedgerEntry.PolicyIssued, body),
            }, cancellationToken).ConfigureAwait(false);
            lines.Add($"policy {RepairPolicy} for {Claimant}: \"{DemoRun.LeakRule}\", payout {RepairPayout / 100}.00 EUR once {VotesRequired} members approve by signed vote");
            return (0, string.Join('\n', lines));
        });

    /// <summary>
    /// After the rule-decided payout: the repair claim the flood opened waits for votes; each neighbour
    /// logs in with their key file and sends their signed vote; the claim is approved, paid, and the
    /// payout verified against the published keys. Also shows what is refused: an anonymous vote (401)
    /// and a second vote by the same member.
    /// </summary>
    public Task DecideAsync(ClaimsHost host, KeyRecord poolKey, CancellationToken cancellationToken) =>
        console.StepAsync("Members decide the repair claim: each neighbour logs in with their key file, signs a vote, sends it over HTTP; the decision names the votes", async report =>
        {
            var engine = host.Engine;
            var claim = engine.ListClaims(DemoRun.Pool).SingleOrDefault(c => c.PolicyId == RepairPolicy)
                ?? throw new InvalidOperationException($"the flood opened no claim under {RepairPolicy}");
            var lines = new List<string> { $"claim {claim.Id} ({Claimant}, {RepairPolicy}): {claim.Status}, waiting for {VotesRequired} votes" };

            using (var anonymous = new HttpClient { BaseAddress = host.HttpAddress })
            using (var response = await anonymous.PostAsJsonAsync(new Uri($"/claims/{claim.Id}/votes", UriKind.Relative), new JsonObject { ["approve"] = true }, cancellationToken).ConfigureAwait(false))
            {
                if (response.StatusCode != HttpStatusCode.Unauthorized)
                {
                    throw new InvalidOperationException($"an anonymous vote answered {(int)response.StatusCode}, not 401");
                }

                lines.Add("an anonymous vote: 401 (refused)");
            }

            foreach (var neighbour in Neighbours)
            {
                using var key = MemberKeyFile(neighbour);
                var kid = MemberKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo()).Kid;
                using var http = await LoginAsync(host, kid, text => key.SignData(text, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation), DemoRun.Pool, neighbour,
                    cancellationToken).ConfigureAwait(false);
                var vote = new JsonObject { ["approve"] = true, ["member_sig"] = MemberSignature.Sign(key, DemoRun.Pool, LedgerEntry.Vote, RegistryChange.Vote(claim.Id, neighbour, true)) };
                var answer = await PostAsync(http, $"/claims/{claim.Id}/votes", vote, cancellationToken).ConfigureAwait(false);
                report($"{neighbour} voted");
                lines.Add($"{neighbour} logged in with members/{neighbour}.key, signed \"approve\" (detached ES256 JWS over the canonical vote): claim {answer["status"]}");
                if (neighbour == Neighbours[0])
                {
                    using var again = await http.PostAsJsonAsync(new Uri($"/claims/{claim.Id}/votes", UriKind.Relative), vote, cancellationToken).ConfigureAwait(false);
                    if (again.IsSuccessStatusCode)
                    {
                        throw new InvalidOperationException($"a second vote by {neighbour} was accepted");
                    }

                    lines.Add($"{neighbour} votes again: {(int)again.StatusCode} (refused: one vote per member)");
                }
            }

            var deadline = Stopwatch.StartNew();
            PayoutInfo? payout;
            while ((payout = engine.ListPayouts(DemoRun.Pool).FirstOrDefault(p => p.ClaimId == claim.Id)) is null)
            {
                if (deadline.Elapsed > TimeSpan.FromMinutes(1))
                {
                    throw new InvalidOperationException($"claim {claim.Id} was not paid within a minute of its votes: {engine.ListClaims(DemoRun.Pool).Single(c => c.Id == claim.Id).Status}");
                }

                await host.HousekeepOnceAsync(cancellationToken).ConfigureAwait(false);
                report("waiting for the custodians' payout signature");
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }

            if (!Jws.TryParse(payout.Jws, out var parts) || KeyPublication.PublicKeys(poolKey).FirstOrDefault(k => k.Kid == parts.Kid) is not { Key: { } verifier } || !Jws.Verify(parts, verifier))
            {
                throw new InvalidOperationException($"payout {payout.ClaimId} does not verify against jwks.json");
            }

            await File.WriteAllTextAsync(Path.Combine(Directory.CreateDirectory(Path.Combine(outDir, "payouts")).FullName, payout.ClaimId + ".jws"), payout.Jws, cancellationToken)
                .ConfigureAwait(false);
            var decision = engine.LedgerEntries(DemoRun.Pool).Last(e => e.Kind == LedgerEntry.Decision && e.Body["claim"]?.GetValue<string>() == claim.Id);
            lines.Add($"decision (ledger #{decision.Sequence}): {decision.Body["decision"]} by {decision.Body["by"]}, naming the vote entries #{string.Join(", #", decision.Body["votes"]!.AsArray().Select(v => v!.ToString()))}");
            lines.Add($"payout {RepairPayout / 100}.00 EUR signed by {payout.Kid}, verified against jwks.json (payouts/{payout.ClaimId}.jws)");
            return (0, string.Join('\n', lines));
        });

    /// <summary>The neighbour's key file (PKCS#8 PEM, mode 0600), made on the first run and kept like the tokens.</summary>
    private ECDsa MemberKeyFile(string member)
    {
        var path = Path.Combine(MembersDir, member + ".key");
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        if (File.Exists(path))
        {
            key.ImportFromPem(File.ReadAllText(path));
            return key;
        }

        File.WriteAllText(path, string.Empty);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n");
        File.WriteAllText(Path.Combine(MembersDir, member + ".pem"), MemberKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo()).ToPem() + "\n");
        return key;
    }

    /// <summary>Challenge-response login (docs/members.md): the key signs the challenge's text; the answer is a bearer token.</summary>
    private static async Task<HttpClient> LoginAsync(ClaimsHost host, string kid, Func<byte[], byte[]> sign, string pool, string? member, CancellationToken cancellationToken)
    {
        var http = new HttpClient { BaseAddress = host.HttpAddress };
        try
        {
            var request = new JsonObject { ["pool"] = pool, ["role"] = member is null ? "operator" : "member" };
            if (member is not null)
            {
                request["member"] = member;
            }

            var challenge = await PostAsync(http, "/auth/challenge", request, cancellationToken).ConfigureAwait(false);
            var signature = sign(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()));
            var session = await PostAsync(http, "/auth/token", new JsonObject
            {
                ["challenge"] = challenge["challenge"]!.GetValue<string>(),
                ["kid"] = kid,
                ["signature"] = Base64Url.Encode(signature),
            }, cancellationToken).ConfigureAwait(false);
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", session["token"]!.GetValue<string>());
            return http;
        }
        catch
        {
            http.Dispose();
            throw;
        }
    }

    private static async Task<JsonObject> PostAsync(HttpClient http, string path, JsonObject body, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body, cancellationToken).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var detail = (JsonNode.Parse(text.Length == 0 ? "{}" : text) as JsonObject)?["detail"]?.GetValue<string>() ?? response.ReasonPhrase;
            throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {detail}");
        }

        return JsonNode.Parse(text)!.AsObject();
    }
}
