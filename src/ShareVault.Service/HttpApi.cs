using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ShareVault.Claims;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Service.Http;

namespace ShareVault.Service;

/// <summary>
/// The HTTP API (ASP.NET Core minimal APIs) on 127.0.0.1. Errors are RFC 9457 problem details:
/// unknown things 404, invalid input 400, conflicts (already exists, votes closed) 409; a write
/// without a bearer token 401, by the wrong operator or member 403 (<see cref="Roles"/>).
/// </summary>
internal static class HttpApi
{
    public static void Configure(IServiceCollection services)
    {
        services.AddProblemDetails();

        // A body that is not the declared shape (bad JSON, a wrong type, a null or missing field)
        // throws BadHttpRequestException with the JSON path, answered 400 below; without this the
        // endpoint ran with null fields and failed deep inside (500).
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.RespectNullableAnnotations = true;
            o.SerializerOptions.RespectRequiredConstructorParameters = true;
        });
    }

    /// <summary>
    /// The one place an exception becomes an HTTP answer: by <see cref="ClaimsError"/> code, never by
    /// BCL type. Anything not recognised is a 500 whose detail says nothing (the log has it).
    /// </summary>
    internal static (int Status, string Title, string Detail) ProblemFor(Exception? exception)
    {
        if (exception is BadHttpRequestException bad)
        {
            // Kestrel/minimal-API request errors (unreadable body, wrong types, too large): the reason
            // is the binder's message and the JSON path, never the body itself.
            var reason = bad.InnerException is System.Text.Json.JsonException json ? bad.Message + " " + json.Message : bad.Message;
            return (bad.StatusCode, bad.StatusCode == StatusCodes.Status400BadRequest ? "Invalid request" : "Request refused", reason);
        }

        if (exception is HttpAuthException auth)
        {
            return (auth.Status, auth.Title, auth.Message);
        }

        return (exception as ClaimsException) switch
        {
            { Error: ClaimsError.NotFound } e => (StatusCodes.Status404NotFound, "Not found", e.Message),
            { Error: ClaimsError.AlreadyExists or ClaimsError.Conflict } e => (StatusCodes.Status409Conflict, "Conflict", e.Message),
            { Error: ClaimsError.InvalidInput } e => (StatusCodes.Status400BadRequest, "Invalid request", e.Message),
            { Error: ClaimsError.Forbidden } e => (StatusCodes.Status403Forbidden, "Forbidden", e.Message),
            { Error: ClaimsError.StorageUnavailable or ClaimsError.SigningUnavailable } e => (StatusCodes.Status503ServiceUnavailable, "Temporarily unavailable", e.Message),
            _ => (StatusCodes.Status500InternalServerError, "Internal error", "The request failed; the service log has the details"),
        };
    }

    public static void Map(WebApplication app, ClaimsHost host, MemberGate gate)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(gate);
        var engine = host.Engine;
        var sessions = gate.Sessions;
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ShareVault.Service.HttpApi");
        app.UseExceptionHandler(error => error.Run(async context =>
        {
            var exception = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var problem = ProblemFor(exception);
            if (problem.Status >= StatusCodes.Status500InternalServerError)
            {
                // Method and route only: the query and body may carry member data, keys or evidence.
                log.LogError(exception, "HTTP {Method} {Path} answered {Status}", context.Request.Method, context.Request.Path.Value, problem.Status);
            }

            if (problem.Status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"sharevault\""; // RFC 6750 §3
            }

            await Results.Problem(detail: problem.Detail, statusCode: problem.Status, title: problem.Title).ExecuteAsync(context).ConfigureAwait(false);
        }));
        app.UseStatusCodePages();

        app.MapGet("/health", () => Results.Ok(new
        {
            status = host.Ingest.LastStoreError is null ? "ok" : "degraded",
            ingest = host.Ingest.LastStoreError ?? "ok",
            housekeeping = host.LastHousekeepingError ?? "ok",
        }));

        // Pools, members, policies, premiums.
        app.MapGet("/pools", () => engine.ListPools());
        app.MapGet("/pools/{id}", (string id) => engine.GetPool(id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{id}'"));
        app.MapPost("/pools", async (CreatePool body, HttpContext http, CancellationToken ct) =>
        {
            Roles.RequireOperator(sessions, http, null);
            await engine.CreatePoolAsync(body.Id, body.Name, body.Currency, body.Key, body.MaxPayout, AdminKeys(body.AdminKeys), body.Admin, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{body.Id}", engine.GetPool(body.Id));
        });
        app.MapGet("/pools/{id}/members", (string id) => engine.ListMembers(id));
        app.MapPost("/pools/{id}/members", async (string id, AddMember body, HttpContext http, CancellationToken ct) =>
        {
            Roles.RequireOperator(sessions, http, id);
            MemberKey? key;
            try
            {
                key = body.Key is null ? null : MemberKey.FromPem(body.Key);
            }
            catch (FormatException e)
            {
                throw new ClaimsException(ClaimsError.InvalidInput, "key: " + e.Message, e);
            }

            await engine.AddMemberAsync(id, body.Id, body.Name ?? body.Id, key, body.MemberSig, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/members/{body.Id}", new { id = body.Id, name = body.Name ?? body.Id });
        });
        app.MapGet("/pools/{id}/policies", (string id) => engine.ListPolicies(id));
        app.MapPost("/pools/{id}/policies", async (string id, IssuePolicy body, HttpContext http, CancellationToken ct) =>
        {
            Roles.RequireOperator(sessions, http, id);
            var context = PolicyContext(body.Context);
            var policy = await engine.IssuePolicyAsync(id, body.Member, body.Id, body.Rule, body.PayoutAmount, body.VotesRequired, context, body.Admin, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/policies/{body.Id}", new { policy.Id, rule = policy.Rule.Text, ruleHash = policy.Rule.HashHex });
        });
        app.MapPost("/pools/{id}/premiums", async (string id, PayPremium body, HttpContext http, CancellationToken ct) =>
        {
            Roles.RequireOperator(sessions, http, id);
            await engine.RecordPremiumAsync(id, body.Member, body.Amount, body.Ref, body.Admin, ct).ConfigureAwait(false);
            return Results.Ok(engine.GetPool(id));
        });
        app.MapGet("/pools/{id}/jwks", (string id) =>
        {
            var pool = engine.GetPool(id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{id}'");
            return Results.Text(engine.Signer.Jwks(pool.KeyName).ToJsonString(), "application/jwk-set+json");
        });

        var treasuries = new Chain.TreasuryView(engine, host.Options.ChainRpcUrl);
        app.MapGet("/pools/{id}/treasury", async (string id, CancellationToken ct) =>
        {
            try
            {
                return Results.Ok(await treasuries.ReadAsync(id, ct).ConfigureAwait(false));
            }
            catch (Exception e) when (Chain.ChainSettlement.IsTransient(e))
            {
                log.LogWarning("treasury balance of pool {Pool} not read: {Reason}", id, e.Message);
                return Results.Problem(detail: "The chain did not answer; the treasury balance is unknown for now", statusCode: StatusCodes.Status502BadGateway, title: "chain unreachable");
            }
        });

        // Ledger.
        app.MapGet("/pools/{id}/ledger", (string id) => Results.Text(new JsonArray([.. engine.LedgerEntries(id).Select(e => (JsonNode)e.ToJson())]).ToJsonString(), "application/json"));
        app.MapGet("/pools/{id}/ledger/checkpoints", (string id) => engine.Checkpoints(id));
        app.MapGet("/pools/{id}/ledger/export", (string id) => Results.Text(LedgerExport.ToText(engine.ExportLedger(id)), "application/json"));

        // Devices and evidence.
        app.MapGet("/devices", (string? pool) => engine.ListDevices(pool).Select(DeviceView));
        app.MapPost("/devices", async (EnrollDevice body, HttpContext http, CancellationToken ct) =>
        {
            Roles.RequireMemberOrOperator(sessions, http, body.Pool, body.Member);
            var (id, spki) = DeviceKeys.Parse(body.PublicKey, body.Id);
            await gate.CheckActionCounterAsync(body.Pool, body.Member, LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(id, body.Member, spki), body.MemberSig, ct).ConfigureAwait(false);
            await engine.EnrollDeviceAsync(body.Pool, body.Member, id, spki, body.Admin, body.MemberSig, ct).ConfigureAwait(false);
            return Results.Created($"/devices/{id}", DeviceView(engine.ListDevices(body.Pool).Single(d => d.Id == id)));
        });
        app.MapGet("/devices/{id}", (string id) => DeviceView(engine.ListDevices().FirstOrDefault(d => d.Id == id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No device '{id}'")));
        app.MapGet("/devices/{id}/evidence", (string id, long? from, int? limit, HttpContext http) =>
            OwnDevice(sessions, http, engine, id).Evidence(id, from ?? 0, Math.Clamp(limit ?? 100, 1, 1000)).Select(e => new
            {
                seq = e.Sequence,
                time = e.Time,
                receivedAt = e.ReceivedAt,
                sha256 = Convert.ToHexStringLower(e.Hash),
                readings = JsonNode.Parse(e.Readings),
            }));
        app.MapGet("/devices/{id}/evidence/{seq:long}", (string id, long seq, HttpContext http) =>
        {
            var record = OwnDevice(sessions, http, engine, id).EvidenceRecord(id, seq) ?? throw new ClaimsException(ClaimsError.NotFound, $"No evidence {id}#{seq}");
            return Results.Bytes(record.Cose, "application/cose; cose-type=\"cose-sign1\"");
        });
        app.MapGet("/devices/{id}/gaps", (string id) => engine.Gaps(id).Select(g => new { from = g.From, to = g.To, detectedAt = g.DetectedAt, skippedAt = g.SkippedAt }));
        app.MapGet("/devices/{id}/chain-breaks", (string id) => engine.ChainBreaks(id));
        app.MapGet("/evidence/rejections", (string? device, string? reason, int? limit) => engine.Rejections(device, reason, Math.Clamp(limit ?? 100, 1, 1000)));
        app.MapGet("/evidence/rejections/counts", () => engine.RejectionCounts());

        // Claims and payouts.
        app.MapGet("/claims", (string? pool, string? status) => engine.ListClaims(pool, status));
        app.MapGet("/claims/{id}", (string id) => engine.ListClaims().FirstOrDefault(c => c.Id == id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No claim '{id}'"));
        app.MapGet("/claims/{id}/payout", (string id) =>
        {
            var payout = engine.ListPayouts().FirstOrDefault(p => p.ClaimId == id) ?? throw new ClaimsException(ClaimsError.NotFound, $"Claim '{id}' has no payout");
            return Results.Text(payout.Jws, "application/jose");
        });
        app.MapGet("/payouts", (string? pool) => engine.ListPayouts(pool));

        app.MapGet("/metrics", () => Results.Text(host.Ingest.Metrics.PrometheusText()
            + "# HELP sharevault_passkey_counter_refusals_total Passkey assertions refused because their signature counter did not increase (possible cloned authenticator).\n"
            + "# TYPE sharevault_passkey_counter_refusals_total counter\n"
            + $"sharevault_passkey_counter_refusals_total {gate.CounterRefusals.ToString(CultureInfo.InvariantCulture)}\n", "text/plain; version=0.0.4"));

        MemberEndpoints.Map(app, host, gate);
        DashboardEndpoints.Map(app, host, gate);
    }

    /// <summary>A device's readings are its member's own data: that member or the pool's operator (a claim's records are public in the ledger export).</summary>
    private static ClaimsEngine OwnDevice(SessionBook sessions, HttpContext http, ClaimsEngine engine, string deviceId)
    {
        var device = engine.Device(deviceId) ?? throw new ClaimsException(ClaimsError.NotFound, $"No device '{deviceId}'");
        Roles.RequireMemberOrOperator(sessions, http, device.PoolId, device.MemberId);
        return engine;
    }

    private static object DeviceView(DeviceRow d) => new
    {
        id = d.Id,
        pool = d.PoolId,
        member = d.MemberId,
        publicKey = LedgerExport.PublicKeyPem(d.PublicKey),
        enrolledAt = d.EnrolledAt,
        evaluatedSeq = d.EvaluatedSequence,
        maxSeq = d.MaxSequence,
    };

    /// <summary>The policy's places and windows; malformed ones are the client's fault (400, naming the JSON path).</summary>
    private static RuleContext PolicyContext(JsonObject? json)
    {
        try
        {
            return RuleContextJson.Read(json ?? new JsonObject());
        }
        catch (FormatException e)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, e.Message, e);
        }
    }

    private static List<AdminKey> AdminKeys(IReadOnlyList<string>? pems)
    {
        try
        {
            return [.. (pems ?? []).Select(AdminKey.FromPem)];
        }
        catch (FormatException e)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, "adminKeys: " + e.Message, e);
        }
    }

    /// <summary><paramref name="AdminKeys"/>: the pool administrators' SPKI PEMs; <paramref name="Admin"/>: {"kid","sig"} by one of them (docs/claims-service.md).</summary>
    internal sealed record CreatePool(string Id, string Name, string Currency, string Key, long MaxPayout, IReadOnlyList<string>? AdminKeys = null, JsonObject? Admin = null);

    /// <summary><paramref name="Key"/>: the member's P-256 public key (PEM); <paramref name="MemberSig"/>: their signature over the member_joined action.</summary>
    internal sealed record AddMember(string Id, string? Name = null, string? Key = null, [property: System.Text.Json.Serialization.JsonPropertyName("member_sig")] JsonObject? MemberSig = null);

    internal sealed record IssuePolicy(string Id, string Member, string Rule, long PayoutAmount, int VotesRequired = 0, JsonObject? Context = null, JsonObject? Admin = null);

    internal sealed record PayPremium(string Member, long Amount, string? Ref = null, JsonObject? Admin = null);

    internal sealed record EnrollDevice(string Pool, string Member, string PublicKey, string? Id = null, JsonObject? Admin = null,
        [property: System.Text.Json.Serialization.JsonPropertyName("member_sig")] JsonObject? MemberSig = null);
}

/// <summary>Device public keys as given at enrolment: SPKI PEM ("PUBLIC KEY") or an EC P-256 JWK (RFC 7518 §6.2.1).</summary>
public static class DeviceKeys
{
    /// <summary>
    /// Returns the device id (given, or the JWK's kid) and the SubjectPublicKeyInfo DER. Whatever is
    /// wrong with the text (not PEM, not a P-256 JWK, a member of the wrong JSON type, bad base64url,
    /// a point off the curve) is a <see cref="ClaimsException"/> with <see cref="ClaimsError.InvalidInput"/>
    /// that names the field, never the key text.
    /// </summary>
    public static (string Id, byte[] Spki) Parse(string text, string? id)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            throw Invalid("The device public key is empty; give an SPKI PEM (\"PUBLIC KEY\") or an EC P-256 JWK");
        }

        text = text.Trim();
        using var key = System.Security.Cryptography.ECDsa.Create();
        string? kid = null;
        try
        {
            if (text.StartsWith('{'))
            {
                if (JsonNode.Parse(text) is not JsonObject jwk)
                {
                    throw Invalid("The device JWK is not a JSON object");
                }

                if (Member(jwk, "kty", required: true) != "EC" || Member(jwk, "crv", required: true) != "P-256")
                {
                    throw Invalid("The device JWK must be kty EC, crv P-256");
                }

                kid = Member(jwk, "kid", required: false);
                key.ImportParameters(new System.Security.Cryptography.ECParameters
                {
                    Curve = System.Security.Cryptography.ECCurve.NamedCurves.nistP256,
                    Q = new System.Security.Cryptography.ECPoint { X = Coordinate(jwk, "x"), Y = Coordinate(jwk, "y") },
                });
            }
            else
            {
                key.ImportFromPem(text);
            }
        }
        catch (System.Text.Json.JsonException e)
        {
            throw Invalid("The device JWK is not valid JSON: " + e.Message, e);
        }
        catch (ArgumentException e)
        {
            // ImportFromPem: no PEM, or no "PUBLIC KEY" block.
            throw Invalid("The device public key is neither an SPKI PEM (\"PUBLIC KEY\") nor a JWK: " + e.Message, e);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw Invalid("The device public key is not a valid EC P-256 key: " + e.Message, e);
        }

        var deviceId = id ?? kid ?? throw Invalid("Give the device id (--device / \"id\"); a PEM key does not carry one");
        try
        {
            Identifier.Validate(deviceId, "Id", nameof(id));
        }
        catch (ArgumentException e)
        {
            throw Invalid(e.Message, e);
        }

        return (deviceId, key.ExportSubjectPublicKeyInfo());
    }

    private static string? Member(JsonObject jwk, string name, bool required)
    {
        var node = jwk[name];
        if (node is null)
        {
            return required ? throw Invalid($"The device JWK has no \"{name}\"") : null;
        }

        return node is JsonValue value && value.TryGetValue<string>(out var text) ? text : throw Invalid($"The device JWK's \"{name}\" must be a string");
    }

    private static byte[] Coordinate(JsonObject jwk, string name)
    {
        // RFC 7518 §6.2.1.2/3: x and y are base64url, each the full 32 octets for P-256.
        var text = Member(jwk, name, required: true)!;
        byte[] bytes;
        try
        {
            bytes = Base64Url.Decode(text);
        }
        catch (FormatException e)
        {
            throw Invalid($"The device JWK's \"{name}\" is not base64url", e);
        }

        return bytes.Length == 32 ? bytes : throw Invalid($"The device JWK's \"{name}\" must be 32 octets for P-256, not {bytes.Length}");
    }

    private static ClaimsException Invalid(string message, Exception? inner = null) => new(ClaimsError.InvalidInput, message, inner);
}
