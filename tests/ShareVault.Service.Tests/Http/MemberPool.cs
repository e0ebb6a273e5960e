using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Service.Tests.Http;

/// <summary>
/// A running service whose pool-1 has members holding key files (alice, the flooded home's owner;
/// bob; carol), an operator key for the service, and a second pool administered by another key;
/// alice's home has flooded and her claim waits for the votes its policy asks for.
/// </summary>
internal sealed class MemberPool : IAsyncDisposable
{

    private MemberPool(ClaimsHost host, ECDsa operatorKey, ECDsa otherAdmin, Dictionary<string, ECDsa> members, SimulatedDevice device)
    {
        Host = host;
        OperatorKey = operatorKey;
        OtherPoolAdmin = otherAdmin;
        Members = members;
        Device = device;
    }

    public ClaimsHost Host { get; }

    public ECDsa OperatorKey { get; }

    /// <summary>The admin key of pool-2: an operator, but not of pool-1.</summary>
    public ECDsa OtherPoolAdmin { get; }

    public IReadOnlyDictionary<string, ECDsa> Members { get; }

    public SimulatedDevice Device { get; }

    public string ClaimId => Host.Engine.ListClaims("pool-1").Single().Id;

    public static async Task<MemberPool> StartAsync(PoolKeyFixture key, string[]? members = null, bool flood = true, int votesRequired = 1)
    {
        var operatorKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var otherAdmin = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var options = IngestOverMqttTests.Options(key) with
        {
            OperatorKeys = [AdminKey.FromSubjectPublicKeyInfo(operatorKey.ExportSubjectPublicKeyInfo())],
        };
        var host = await ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default);
        var keys = new Dictionary<string, ECDsa>(StringComparer.Ordinal);
        var device = new SimulatedDevice("pi-flood-" + Guid.NewGuid().ToString("N")[..6]);
        var engine = host.Engine;
        await engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", key.KeyName, 50_000, default);
        var adminKeys = new[] { AdminKey.FromSubjectPublicKeyInfo(otherAdmin.ExportSubjectPublicKeyInfo()) };
        await engine.CreatePoolAsync("pool-2", "Hillside", "EUR", key.KeyName, 50_000, adminKeys,
            AdminSignature.Sign(otherAdmin, "pool-2", LedgerEntry.PoolCreated, engine.PoolBody("pool-2", "Hillside", "EUR", key.KeyName, 50_000, adminKeys)), default);
        foreach (var member in members ?? ["alice", "bob", "carol"])
        {
            keys[member] = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var memberKey = MemberKey.FromSubjectPublicKeyInfo(keys[member].ExportSubjectPublicKeyInfo());
            await engine.AddMemberAsync("pool-1", member, char.ToUpperInvariant(member[0]) + member[1..], memberKey,
                MemberSignature.Sign(keys[member], "pool-1", LedgerEntry.MemberJoined, RegistryChange.MemberJoined(member, char.ToUpperInvariant(member[0]) + member[1..], memberKey)), default);
        }

        await engine.IssuePolicyAsync("pool-1", "alice", "pol-alice-flood", "water_leak == 1 for 10m", 25_000, votesRequired, null, default);
        await engine.RecordPremiumAsync("pool-1", "alice", 40_000, default);
        await engine.RecordPremiumAsync("pool-1", "bob", 40_000, default);
        await engine.EnrollDeviceAsync("pool-1", "alice", device.Id, device.PublicKey, null,
            MemberSignature.Sign(keys["alice"], "pool-1", LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(device.Id, "alice", device.PublicKey)), default);
        if (flood)
        {
            await host.Ingest.ProcessBatchAsync([.. device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12)
                .Select(r => new IncomingEvidence(EvidenceTopics.Evidence(device.Id), r, device.Id))], default);
        }

        return new MemberPool(host, operatorKey, otherAdmin, keys, device);
    }

    public HttpClient Anonymous() => new() { BaseAddress = Host.HttpAddress };

    /// <summary>A client logged in as the service's operator (or, with <paramref name="key"/>, whatever that key operates).</summary>
    public async Task<HttpClient> OperatorAsync(ECDsa? key = null, string pool = "pool-1")
    {
        var http = Anonymous();
        var challenge = await PostAsync(http, "/auth/challenge", new JsonObject { ["role"] = "operator", ["pool"] = pool });
        var signature = (key ?? OperatorKey).SignData(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var token = await PostAsync(http, "/auth/token", new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = Base64Url.Encode(signature) });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token["token"]!.GetValue<string>());
        return http;
    }

    /// <summary>A client logged in as <paramref name="member"/> of pool-1 with their key file.</summary>
    public async Task<HttpClient> MemberAsync(string member)
    {
        var http = Anonymous();
        var challenge = await PostAsync(http, "/auth/challenge", new JsonObject { ["pool"] = "pool-1", ["member"] = member });
        var signature = Members[member].SignData(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var token = await PostAsync(http, "/auth/token", new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = Base64Url.Encode(signature) });
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token["token"]!.GetValue<string>());
        return http;
    }

    /// <summary><paramref name="member"/>'s signature (key file) over an action of pool-1.</summary>
    public JsonObject Sign(string member, string kind, JsonObject body) => MemberSignature.Sign(Members[member], "pool-1", kind, body);

    public static async Task<JsonObject> PostAsync(HttpClient http, string path, JsonObject body)
    {
        using var response = await http.PostAsJsonAsync(new Uri(path, UriKind.Relative), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Device.DisposeAsync();
        OperatorKey.Dispose();
        OtherPoolAdmin.Dispose();
        foreach (var key in Members.Values)
        {
            key.Dispose();
        }
    }
}
