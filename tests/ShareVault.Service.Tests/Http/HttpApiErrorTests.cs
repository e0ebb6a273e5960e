using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Service.Tests.Http;

[Collection(PoolKeyGroup.Name)]
public sealed class HttpApiErrorTests(PoolKeyFixture key)
{
    private static readonly string Pem = NewPem();

    /// <summary>Bodies for POST /devices that are the client's fault; before the fix some answered 500 or 409, or 400 without a reason.</summary>
    public static TheoryData<string, string, string> BadDeviceBodies => new()
    {
        // name, body, a fragment the problem detail must contain
        { "JWK without x (was 500: NullReferenceException)", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"y\":\"AA\"")), "no \"x\"" },
        { "JWK with x null (was 500)", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":null,\"y\":\"AA\"")), "no \"x\"" },
        { "JWK with x a number (was 409)", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":5,\"y\":\"AA\"")), "\"x\" must be a string" },
        { "JWK with kty a number (was 409)", Body(Jwk("\"kty\":1,\"crv\":\"P-256\"")), "\"kty\" must be a string" },
        { "JWK with kid an array and no id (was 409)", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + new string('A', 43) + "\",\"y\":\"" + new string('A', 43) + "\",\"kid\":[1]"), id: null), "\"kid\" must be a string" },
        { "JWK with a short x", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"")), "32 octets" },
        { "JWK with x not base64url", Body(Jwk("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"!!!!\",\"y\":\"AAAA\"")), "not base64url" },
        { "PEM with a broken body", Body("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----"), "neither an SPKI PEM" },
        { "pool missing (was null deep in the engine)", "{\"member\":\"alice\",\"id\":\"pi-1\",\"publicKey\":" + JsonValue.Create(Pem).ToJsonString() + "}", "pool" },
        { "pool null", "{\"pool\":null,\"member\":\"alice\",\"id\":\"pi-1\",\"publicKey\":" + JsonValue.Create(Pem).ToJsonString() + "}", "Pool" },
        { "pool a number (was 400 without a reason)", "{\"pool\":5,\"member\":\"alice\",\"id\":\"pi-1\",\"publicKey\":" + JsonValue.Create(Pem).ToJsonString() + "}", "$.pool" },
        { "publicKey a huge number", "{\"pool\":\"pool-1\",\"member\":\"alice\",\"id\":\"pi-1\",\"publicKey\":123456789012345678901234567890}", "$.publicKey" },
        { "body an array", "[]", "JSON" },
        { "body not JSON", "{\"pool\":", "JSON" },
    };

    [Theory]
    [MemberData(nameof(BadDeviceBodies))]
    public async Task A_bad_device_enrolment_body_is_a_400_with_its_reason(string name, string body, string reason)
    {
        Assert.NotNull(name);
        await using var host = await StartAsync();
        using var http = await OperatorAsync(host);
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(new Uri("/devices", UriKind.Relative), content);
        var problem = await ProblemAsync(response);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(reason, problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_pool_is_404_and_a_second_enrolment_is_409()
    {
        await using var host = await StartAsync();
        using var http = await OperatorAsync(host);
        using (var unknown = await http.PostAsync(new Uri("/devices", UriKind.Relative), Json(Body(Pem, pool: "nope"))))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            await ProblemAsync(unknown);
        }

        using (var first = await http.PostAsync(new Uri("/devices", UriKind.Relative), Json(Body(Pem))))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        using var again = await http.PostAsync(new Uri("/devices", UriKind.Relative), Json(Body(Pem)));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        await ProblemAsync(again);
    }

    [Theory]
    [InlineData(ClaimsError.NotFound, 404)]
    [InlineData(ClaimsError.AlreadyExists, 409)]
    [InlineData(ClaimsError.Conflict, 409)]
    [InlineData(ClaimsError.InvalidInput, 400)]
    [InlineData(ClaimsError.Forbidden, 403)]
    [InlineData(ClaimsError.StorageUnavailable, 503)]
    [InlineData(ClaimsError.SigningUnavailable, 503)]
    public void A_claims_error_code_decides_the_status(ClaimsError error, int status)
    {
        var problem = HttpApi.ProblemFor(new ClaimsException(error, "pool 'p' says no"));
        Assert.Equal(status, problem.Status);
        Assert.Equal("pool 'p' says no", problem.Detail);
    }

    [Fact]
    public void Any_other_exception_is_a_500_whose_detail_says_nothing()
    {
        // An InvalidOperationException not thrown by the claims library is not a conflict.
        var problem = HttpApi.ProblemFor(new InvalidOperationException("connection string Password=hunter2"));
        Assert.Equal(500, problem.Status);
        Assert.DoesNotContain("hunter2", problem.Detail, StringComparison.Ordinal);
    }

    private static readonly ECDsa Operator = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>Enrolling a device is the operator's (or its member's) write: log in as the service's operator.</summary>
    private static async Task<HttpClient> OperatorAsync(ClaimsHost host)
    {
        var http = new HttpClient { BaseAddress = host.HttpAddress };
        using var challengeResponse = await http.PostAsJsonAsync(new Uri("/auth/challenge", UriKind.Relative), new JsonObject { ["role"] = "operator", ["pool"] = "pool-1" });
        var challenge = (await challengeResponse.Content.ReadFromJsonAsync<JsonObject>())!;
        var signature = Operator.SignData(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        using var tokenResponse = await http.PostAsJsonAsync(new Uri("/auth/token", UriKind.Relative), new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = ShareVault.Hardware.Base64Url.Encode(signature) });
        var token = (await tokenResponse.Content.ReadFromJsonAsync<JsonObject>())!["token"]!.GetValue<string>();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private async Task<ClaimsHost> StartAsync()
    {
        var options = IngestOverMqttTests.Options(key) with { OperatorKeys = [ShareVault.Claims.Ledger.AdminKey.FromSubjectPublicKeyInfo(Operator.ExportSubjectPublicKeyInfo())] };
        var host = await ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default);
        await IngestOverMqttTests.SetUpPoolAsync(host.Engine, key.KeyName);
        return host;
    }

    private static async Task<JsonNode> ProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return (await response.Content.ReadFromJsonAsync<JsonNode>())!;
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string Jwk(string members) => "{" + members + "}";

    private static string Body(string publicKey, string? id = "pi-http-1", string pool = "pool-1")
    {
        var body = new JsonObject { ["pool"] = pool, ["member"] = "alice", ["publicKey"] = publicKey };
        if (id is not null)
        {
            body["id"] = id;
        }

        return body.ToJsonString();
    }

    private static string NewPem()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return ec.ExportSubjectPublicKeyInfoPem();
    }
}
