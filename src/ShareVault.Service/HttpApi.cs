using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using ShareVault.Claims;
using ShareVault.Claims.Devices;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Service;

/// <summary>
/// The HTTP API (ASP.NET Core minimal APIs) on 127.0.0.1. Errors are RFC 9457 problem details:
/// unknown things 404, invalid input 400, conflicts (already exists, votes closed) 409.
/// </summary>
internal static class HttpApi
{
    public static void Configure(IServiceCollection services) => services.AddProblemDetails();

    public static void Map(WebApplication app, ClaimsHost host)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentNullException.ThrowIfNull(host);
        var engine = host.Engine;
        app.UseExceptionHandler(error => error.Run(async context =>
        {
            var exception = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var (status, title) = exception switch
            {
                ClaimsException { Error: ClaimsError.NotFound } => (StatusCodes.Status404NotFound, "Not found"),
                ClaimsException { Error: ClaimsError.InvalidInput } => (StatusCodes.Status400BadRequest, "Invalid request"),
                ClaimsException { Error: ClaimsError.AlreadyExists or ClaimsError.Conflict } => (StatusCodes.Status409Conflict, "Conflict"),
                ClaimsException { IsTransient: true } => (StatusCodes.Status503ServiceUnavailable, "Unavailable"),
                KeyNotFoundException => (StatusCodes.Status404NotFound, "Not found"),
                ArgumentException or FormatException or System.Text.Json.JsonException or BadHttpRequestException or System.Security.Cryptography.CryptographicException
                    => (StatusCodes.Status400BadRequest, "Invalid request"),
                InvalidOperationException => (StatusCodes.Status409Conflict, "Conflict"),
                _ => (StatusCodes.Status500InternalServerError, "Internal error"),
            };
            var detail = status == StatusCodes.Status500InternalServerError ? "see the service log" : exception?.Message;
            await Results.Problem(detail: detail, statusCode: status, title: title).ExecuteAsync(context).ConfigureAwait(false);
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
        app.MapGet("/pools/{id}", (string id) => engine.GetPool(id) ?? throw new KeyNotFoundException($"No pool '{id}'"));
        app.MapPost("/pools", async (CreatePool body, CancellationToken ct) =>
        {
            await engine.CreatePoolAsync(body.Id, body.Name, body.Currency, body.Key, body.MaxPayout, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{body.Id}", engine.GetPool(body.Id));
        });
        app.MapGet("/pools/{id}/members", (string id) => engine.ListMembers(id));
        app.MapPost("/pools/{id}/members", async (string id, AddMember body, CancellationToken ct) =>
        {
            await engine.AddMemberAsync(id, body.Id, body.Name ?? body.Id, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/members/{body.Id}", body);
        });
        app.MapGet("/pools/{id}/policies", (string id) => engine.ListPolicies(id));
        app.MapPost("/pools/{id}/policies", async (string id, IssuePolicy body, CancellationToken ct) =>
        {
            var context = RuleContextJson.Read(body.Context ?? new JsonObject());
            var policy = await engine.IssuePolicyAsync(id, body.Member, body.Id, body.Rule, body.PayoutAmount, body.VotesRequired, context, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/policies/{body.Id}", new { policy.Id, rule = policy.Rule.Text, ruleHash = policy.Rule.HashHex });
        });
        app.MapPost("/pools/{id}/premiums", async (string id, PayPremium body, CancellationToken ct) =>
        {
            await engine.RecordPremiumAsync(id, body.Member, body.Amount, ct).ConfigureAwait(false);
            return Results.Ok(engine.GetPool(id));
        });
        app.MapGet("/pools/{id}/jwks", (string id) =>
        {
            var pool = engine.GetPool(id) ?? throw new KeyNotFoundException($"No pool '{id}'");
            return Results.Text(engine.Signer.Jwks(pool.KeyName).ToJsonString(), "application/jwk-set+json");
        });

        // Ledger.
        app.MapGet("/pools/{id}/ledger", (string id) => Results.Text(new JsonArray([.. engine.LedgerEntries(id).Select(e => (JsonNode)e.ToJson())]).ToJsonString(), "application/json"));
        app.MapGet("/pools/{id}/ledger/checkpoints", (string id) => engine.Checkpoints(id));
        app.MapGet("/pools/{id}/ledger/export", (string id) => Results.Text(LedgerExport.ToText(engine.ExportLedger(id)), "application/json"));

        // Devices and evidence.
        app.MapGet("/devices", (string? pool) => engine.ListDevices(pool).Select(DeviceView));
        app.MapPost("/devices", async (EnrollDevice body, CancellationToken ct) =>
        {
            var (id, spki) = DeviceKeys.Parse(body.PublicKey, body.Id);
            await engine.EnrollDeviceAsync(body.Pool, body.Member, id, spki, ct).ConfigureAwait(false);
            return Results.Created($"/devices/{id}", DeviceView(engine.ListDevices(body.Pool).Single(d => d.Id == id)));
        });
        app.MapGet("/devices/{id}", (string id) => DeviceView(engine.ListDevices().FirstOrDefault(d => d.Id == id) ?? throw new KeyNotFoundException($"No device '{id}'")));
        app.MapGet("/devices/{id}/evidence", (string id, long? from, int? limit) =>
            engine.Evidence(id, from ?? 0, Math.Clamp(limit ?? 100, 1, 1000)).Select(e => new
            {
                seq = e.Sequence,
                time = e.Time,
                receivedAt = e.ReceivedAt,
                sha256 = Convert.ToHexStringLower(e.Hash),
                readings = JsonNode.Parse(e.Readings),
            }));
        app.MapGet("/devices/{id}/evidence/{seq:long}", (string id, long seq) =>
        {
            var record = engine.EvidenceRecord(id, seq) ?? throw new KeyNotFoundException($"No evidence {id}#{seq}");
            return Results.Bytes(record.Cose, "application/cose; cose-type=\"cose-sign1\"");
        });
        app.MapGet("/devices/{id}/gaps", (string id) => engine.Gaps(id).Select(g => new { from = g.From, to = g.To, detectedAt = g.DetectedAt, skippedAt = g.SkippedAt }));
        app.MapGet("/devices/{id}/chain-breaks", (string id) => engine.ChainBreaks(id));
        app.MapGet("/evidence/rejections", (string? device, string? reason, int? limit) => engine.Rejections(device, reason, Math.Clamp(limit ?? 100, 1, 1000)));
        app.MapGet("/evidence/rejections/counts", () => engine.RejectionCounts());

        // Claims and payouts.
        app.MapGet("/claims", (string? pool, string? status) => engine.ListClaims(pool, status));
        app.MapGet("/claims/{id}", (string id) => engine.ListClaims().FirstOrDefault(c => c.Id == id) ?? throw new KeyNotFoundException($"No claim '{id}'"));
        app.MapPost("/claims/{id}/votes", async (string id, CastVote body, CancellationToken ct) =>
            Results.Ok(new { claim = id, status = await engine.VoteAsync(id, body.Member, body.Approve, ct).ConfigureAwait(false) }));
        app.MapGet("/claims/{id}/payout", (string id) =>
        {
            var payout = engine.ListPayouts().FirstOrDefault(p => p.ClaimId == id) ?? throw new KeyNotFoundException($"Claim '{id}' has no payout");
            return Results.Text(payout.Jws, "application/jose");
        });
        app.MapGet("/payouts", (string? pool) => engine.ListPayouts(pool));

        app.MapGet("/metrics", () => Results.Text(Metrics(host), "text/plain; version=0.0.4"));
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

    /// <summary>Prometheus text exposition format 0.0.4.</summary>
    private static string Metrics(ClaimsHost host)
    {
        var m = host.Ingest.Metrics;
        var text = new StringBuilder();
        text.Append("# TYPE sharevault_evidence_received_total counter\nsharevault_evidence_received_total ").Append(Interlocked.Read(ref m.ReceivedCount)).Append('\n');
        text.Append("# TYPE sharevault_evidence_verified_total counter\nsharevault_evidence_verified_total ").Append(Interlocked.Read(ref m.VerifiedCount)).Append('\n');
        text.Append("# TYPE sharevault_evidence_stored_total counter\nsharevault_evidence_stored_total ").Append(Interlocked.Read(ref m.StoredCount)).Append('\n');
        text.Append("# TYPE sharevault_evidence_duplicate_total counter\nsharevault_evidence_duplicate_total ").Append(Interlocked.Read(ref m.DuplicateCount)).Append('\n');
        text.Append("# TYPE sharevault_ingest_store_failures_total counter\nsharevault_ingest_store_failures_total ").Append(Interlocked.Read(ref m.StoreFailureCount)).Append('\n');
        text.Append("# TYPE sharevault_ingest_abandoned_total counter\nsharevault_ingest_abandoned_total ").Append(Interlocked.Read(ref m.AbandonedCount)).Append('\n');
        text.Append("# TYPE sharevault_broker_refused_total counter\nsharevault_broker_refused_total ").Append(Interlocked.Read(ref m.RefusedByBrokerCount)).Append('\n');
        text.Append("# TYPE sharevault_evidence_chain_breaks_total counter\nsharevault_evidence_chain_breaks_total ").Append(host.Engine.ChainBreakCount).Append('\n');
        text.Append("# TYPE sharevault_evidence_rejected_total counter\n");
        foreach (var (reason, count) in m.Rejections.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"sharevault_evidence_rejected_total{{reason=\"{reason}\"}} {count}\n");
        }

        return text.ToString();
    }

    internal sealed record CreatePool(string Id, string Name, string Currency, string Key, long MaxPayout);

    internal sealed record AddMember(string Id, string? Name);

    internal sealed record IssuePolicy(string Id, string Member, string Rule, long PayoutAmount, int VotesRequired, JsonObject? Context);

    internal sealed record PayPremium(string Member, long Amount);

    internal sealed record EnrollDevice(string Pool, string Member, string PublicKey, string? Id);

    internal sealed record CastVote(string Member, bool Approve);
}

/// <summary>Device public keys as given at enrolment: SPKI PEM ("PUBLIC KEY") or an EC P-256 JWK (RFC 7518 §6.2.1).</summary>
public static class DeviceKeys
{
    /// <summary>Returns the device id (given, or the JWK's kid) and the SubjectPublicKeyInfo DER.</summary>
    public static (string Id, byte[] Spki) Parse(string text, string? id)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        text = text.Trim();
        using var key = System.Security.Cryptography.ECDsa.Create();
        string? kid = null;
        if (text.StartsWith('{'))
        {
            var jwk = JsonNode.Parse(text)!.AsObject();
            if (jwk["kty"]?.GetValue<string>() != "EC" || jwk["crv"]?.GetValue<string>() != "P-256")
            {
                throw new ArgumentException("The device JWK must be kty EC, crv P-256");
            }

            key.ImportParameters(new System.Security.Cryptography.ECParameters
            {
                Curve = System.Security.Cryptography.ECCurve.NamedCurves.nistP256,
                Q = new System.Security.Cryptography.ECPoint { X = Base64Url.Decode(jwk["x"]!.GetValue<string>()), Y = Base64Url.Decode(jwk["y"]!.GetValue<string>()) },
            });
            kid = jwk["kid"]?.GetValue<string>();
        }
        else
        {
            key.ImportFromPem(text);
        }

        var deviceId = id ?? kid ?? throw new ArgumentException("Give the device id (--device / \"id\"); a PEM key does not carry one");
        Identifier.Validate(deviceId, "Id", nameof(id));
        return (deviceId, key.ExportSubjectPublicKeyInfo());
    }
}
