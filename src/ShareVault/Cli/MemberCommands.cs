using System.CommandLine;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;

namespace ShareVault.Cli;

/// <summary>
/// <c>sharevault member …</c>: a member's own P-256 key (a key file, or a PKCS#11 token), their
/// signature over an action (<see cref="MemberSignature"/>), and the HTTP API used with that key:
/// a login (challenge-response, prints the bearer token) and a signed vote.
/// </summary>
internal static class MemberCommands
{
    public static Command Build()
    {
        var outFile = new Option<string?>("--out") { Description = "Write a new software key here (PKCS#8 PEM, mode 0600)" };
        var token = new Option<string?>("--token") { Description = "…or create (or open) it inside a PKCS#11 token: pkcs11:token=T;object=LABEL?module-path=…&pin-source=file:…" };
        var create = new Command("create", "Create the member's P-256 key; prints its public key PEM (what the member gives when joining)") { outFile, token };
        create.SetAction(result => CliContext.RunAsync(() =>
        {
            ECDsa key;
            Pkcs11DeviceKey? device = null;
            if (result.GetValue(token) is { } uri)
            {
                device = Pkcs11DeviceKey.Open(uri, create: true);
                key = new HardwareECDsa(device);
            }
            else
            {
                var path = result.GetValue(outFile) ?? throw new ArgumentException("Give --out FILE (a key file) or --token URI (PKCS#11)");
                if (File.Exists(path))
                {
                    throw new ArgumentException($"{path} exists; a member key is never overwritten");
                }

                key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                File.WriteAllText(path, string.Empty);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                File.WriteAllText(path, key.ExportPkcs8PrivateKeyPem() + "\n");
            }

            using (device)
            using (key)
            {
                var member = MemberKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo());
                Console.Write(member.ToPem() + "\n");
                Console.Error.WriteLine($"member key {member.Kid}");
            }

            return CliContext.Ok;
        }));
        var keyCommand = new Command("key", "The member's own key");
        keyCommand.Subcommands.Add(create);

        var keyOption = new Option<string>("--key") { Required = true, Description = "The member's key: a PEM key file, or a PKCS#11 URI (see member key create)" };
        var pool = new Option<string>("--pool") { Required = true, Description = "Pool id" };
        var kind = new Option<string>("--kind") { Required = true, Description = "member_joined, policy_accepted, device_enrolled or vote" };
        var body = new Option<string>("--body") { Required = true, Description = "The action's body as JSON (a file, or - for stdin)" };
        var sign = new Command("sign", "Sign an action with the member's key; prints the member_sig JSON ({\"kid\",\"sig\"}: a detached ES256 JWS over the canonical action)") { keyOption, pool, kind, body };
        sign.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var source = result.GetValue(body)!;
            var text = source == "-" ? await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false) : await File.ReadAllTextAsync(source, cancellationToken).ConfigureAwait(false);
            var parsed = JsonNode.Parse(text) as JsonObject ?? throw new FormatException("--body is not a JSON object");
            using var key = OpenKey(result.GetValue(keyOption)!);
            Console.WriteLine(MemberSignature.Sign(key.Key, result.GetValue(pool)!, result.GetValue(kind)!, parsed).ToJsonString());
            return CliContext.Ok;
        }));

        var url = new Option<string>("--url") { Description = "The claims service's HTTP API", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var member = new Option<string?>("--member") { Description = "Member id (omit with --operator)" };
        var asOperator = new Option<bool>("--operator") { Description = "Log in as the operator (the key is an operator or pool admin key: P-256)" };
        var login = new Command("login", "Log in to the HTTP API with the key (challenge-response); prints the bearer token (15 minutes) for Authorization: Bearer") { url, pool, member, keyOption, asOperator };
        login.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            using var key = OpenKey(result.GetValue(keyOption)!);
            using var http = new HttpClient { BaseAddress = new Uri(result.GetValue(url)!) };
            Console.WriteLine(await LoginAsync(http, key.Key, result.GetValue(pool)!, result.GetValue(member), result.GetValue(asOperator), cancellationToken).ConfigureAwait(false));
            return CliContext.Ok;
        }));

        var claim = new Option<string>("--claim") { Required = true, Description = "Claim id" };
        var decline = new Option<bool>("--decline") { Description = "Vote to decline (default: approve)" };
        var vote = new Command("vote", "Vote on a claim over the HTTP API: log in, sign the vote with the member's key, send it") { url, pool, member, keyOption, claim, decline };
        vote.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var memberId = result.GetValue(member) ?? throw new ArgumentException("--member is required");
            using var key = OpenKey(result.GetValue(keyOption)!);
            using var http = new HttpClient { BaseAddress = new Uri(result.GetValue(url)!) };
            var bearer = await LoginAsync(http, key.Key, result.GetValue(pool)!, memberId, false, cancellationToken).ConfigureAwait(false);
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
            var approve = !result.GetValue(decline);
            var claimId = result.GetValue(claim)!;
            var signature = MemberSignature.Sign(key.Key, result.GetValue(pool)!, LedgerEntry.Vote, RegistryChange.Vote(claimId, memberId, approve));
            var answer = await PostAsync(http, $"/claims/{Uri.EscapeDataString(claimId)}/votes", new JsonObject { ["approve"] = approve, ["member_sig"] = signature }, cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"claim {claimId} is {answer["status"]}");
            return CliContext.Ok;
        }));

        var command = new Command("member", "A pool member's own key: create it, sign actions (join, policy acceptance, device enrolment, vote), log in and vote over the HTTP API");
        command.Subcommands.Add(keyCommand);
        command.Subcommands.Add(sign);
        command.Subcommands.Add(login);
        command.Subcommands.Add(vote);
        return command;
    }

    /// <summary>A PEM private key file or a PKCS#11 key (the URI's PIN from its pin-source, never the URI itself).</summary>
    internal static MemberSigningKey OpenKey(string key)
    {
        if (key.StartsWith("pkcs11:", StringComparison.Ordinal))
        {
            var device = Pkcs11DeviceKey.Open(key);
            return new MemberSigningKey(new HardwareECDsa(device), device);
        }

        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportFromPem(File.ReadAllText(key));
            return new MemberSigningKey(ecdsa, null);
        }
        catch (ArgumentException e)
        {
            ecdsa.Dispose();
            throw new FormatException($"{key} is not a PEM EC private key: {e.Message}", e);
        }
    }

    /// <summary>The key as an <see cref="ECDsa"/>, owning the token session behind it (if any).</summary>
    internal sealed class MemberSigningKey(ECDsa key, IDisposable? owner) : IDisposable
    {
        public ECDsa Key { get; } = key;

        public void Dispose()
        {
            Key.Dispose();
            owner?.Dispose();
        }
    }

    private static async Task<string> LoginAsync(HttpClient http, ECDsa key, string pool, string? member, bool asOperator, CancellationToken cancellationToken)
    {
        var request = new JsonObject { ["pool"] = pool, ["role"] = asOperator ? "operator" : "member" };
        if (!asOperator)
        {
            request["member"] = member ?? throw new ArgumentException("--member is required (or --operator)");
        }

        var challenge = await PostAsync(http, "/auth/challenge", request, cancellationToken).ConfigureAwait(false);
        var signature = key.SignData(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var session = await PostAsync(http, "/auth/token", new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = Base64Url.Encode(signature) }, cancellationToken).ConfigureAwait(false);
        return session["token"]!.GetValue<string>();
    }

    private static async Task<JsonObject> PostAsync(HttpClient http, string path, JsonObject body, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new IOException($"{http.BaseAddress}: {e.Message}", e);
        }

        using var _ = response;
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            var detail = (JsonNode.Parse(text.Length == 0 ? "{}" : text) as JsonObject)?["detail"]?.GetValue<string>() ?? response.ReasonPhrase;
            throw new InvalidOperationException($"{path}: {(int)response.StatusCode} {detail}");
        }

        return JsonNode.Parse(text)!.AsObject();
    }
}
