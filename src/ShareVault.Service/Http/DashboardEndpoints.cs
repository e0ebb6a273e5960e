using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ShareVault.Claims.Errors;

namespace ShareVault.Service.Http;

/// <summary>
/// The members' dashboard (<c>Http/Dashboard/</c>: plain HTML, CSS and JavaScript embedded in this
/// assembly, no build step), the API description (<c>docs/openapi.json</c>, embedded), the claim
/// evidence the dashboard charts, and a server-sent event stream (WHATWG HTML §9.2) that tells open
/// pages when evidence, ledger entries or checkpoints arrive.
/// </summary>
internal static class DashboardEndpoints
{
    private static readonly Assembly Resources = typeof(DashboardEndpoints).Assembly;

    public static void Map(WebApplication app, ClaimsHost host, MemberGate gate)
    {
        var engine = host.Engine;
        app.MapGet("/", () => Results.Redirect("/dashboard/"));
        app.MapGet("/dashboard/", () => Resource("dashboard/index.html", "text/html; charset=utf-8"));
        app.MapGet("/dashboard/{file}", (string file) => Resource("dashboard/" + file, ContentType(file)));
        app.MapGet("/openapi.json", () => Resource("openapi.json", "application/json"));
        app.MapGet("/config", () => Results.Ok(new { rpId = gate.RelyingParty.RpId, origin = gate.RelyingParty.Origin }));

        // A claim's records as its ledger entry lists them (and the one before, as the export carries them): public like the export.
        app.MapGet("/claims/{id}/evidence", (string id) =>
        {
            var claim = engine.ListClaims().FirstOrDefault(c => c.Id == id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No claim '{id}'");
            var seqs = claim.Evidence.Select(e => e!["seq"]!.GetValue<long>()).ToList();
            var first = Math.Max(0, seqs.Min() - 1);
            return engine.Evidence(claim.DeviceId, first, (int)Math.Min(1000, seqs.Max() - first + 1)).Select(e => new
            {
                seq = e.Sequence,
                time = e.Time,
                receivedAt = e.ReceivedAt,
                sha256 = Convert.ToHexStringLower(e.Hash),
                inClaim = seqs.Contains(e.Sequence),
                readings = JsonNode.Parse(e.Readings),
            });
        });

        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        app.MapGet("/events", async (HttpContext context, CancellationToken requestAborted) =>
        {
            context.Response.Headers.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-store";
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, stopping);
            using var wake = new SemaphoreSlim(0, int.MaxValue);
            void Committed() => wake.Release();
            host.Ingest.BatchCommitted += Committed;
            try
            {
                string? last = null;
                while (!stop.IsCancellationRequested)
                {
                    // Evidence wakes the stream at once; ledger entries written by housekeeping or the
                    // CLI (payouts, checkpoints, votes) are seen within a second.
                    var stamp = Stamp(host);
                    if (stamp != last)
                    {
                        await context.Response.WriteAsync($"event: change\ndata: {stamp}\n\n", stop.Token).ConfigureAwait(false);
                        await context.Response.Body.FlushAsync(stop.Token).ConfigureAwait(false);
                        last = stamp;
                    }

                    await wake.WaitAsync(TimeSpan.FromSeconds(1), stop.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                // the page went away or the service stops
            }
            finally
            {
                host.Ingest.BatchCommitted -= Committed;
            }
        });
    }

    private static string Stamp(ClaimsHost host)
    {
        var engine = host.Engine;
        var pools = engine.ListPools();
        var ledger = pools.Sum(p => engine.LedgerHead(p.Id)?.Seq ?? 0);
        var checkpoints = pools.Sum(p => engine.Checkpoints(p.Id).Count);
        return new JsonObject { ["evidence"] = engine.EvidenceCount(), ["entries"] = ledger, ["checkpoints"] = checkpoints }.ToJsonString();
    }

    private static IResult Resource(string name, string contentType)
    {
        using var stream = Resources.GetManifestResourceStream(name);
        if (stream is null)
        {
            return Results.NotFound();
        }

        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Results.Bytes(copy.ToArray(), contentType);
    }

    private static string ContentType(string file) => Path.GetExtension(file) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}
