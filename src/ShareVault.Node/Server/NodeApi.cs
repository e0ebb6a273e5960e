using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Node.Audit;
using ShareVault.Node.Guard;

namespace ShareVault.Node.Server;

/// <summary>
/// The node's <c>/v1</c> endpoints. Requests are untrusted: a malformed one is a 400 with a reason,
/// a refusal a 403 <c>{"refused": CODE, "detail"}</c> (409 with the node's head for StaleLedger), a
/// hardware failure a 4xx/5xx naming the <see cref="ShareStoreError"/>; never an unhandled exception.
/// The whole check → hardware → signed sequence runs under one lock, so the guard's memory of what
/// was signed cannot race a second request for the same claim.
/// </summary>
internal sealed class NodeApi(string custodian, CustodianKind kind, IShareStore store, SigningGuard guard, AuditLog audit, ShareParameterStore shares) : IDisposable
{
    private readonly SemaphoreSlim _signing = new(1, 1);
    private readonly ShareImports? _imports = store is IShoupShareStore shoup ? new ShareImports(shoup) : null;
    private readonly HashSet<string> _probes = new(StringComparer.Ordinal);

    public string Custodian { get; } = custodian;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/health", (HttpContext c) => Json(c, 200, new JsonObject { ["status"] = "ok", [NodeWire.Custodian] = Custodian, ["kind"] = kind.ToText() }));
        app.MapGet("/v1/keys", ListAsync);
        app.MapGet("/v1/keys/{label}", PublicKeyAsync);
        app.MapPost("/v1/keys/{label}", GenerateAsync);
        app.MapDelete("/v1/keys/{label}", DeleteAsync);
        app.MapPost("/v1/keys/{label}/import", StartImportAsync);
        app.MapPut("/v1/keys/{label}/import/{id}", FinishImportAsync);
        app.MapPost("/v1/keys/{label}/shoup-partial", ShoupPartialAsync);
        app.MapGet("/v1/pools/{pool}/head", (HttpContext c) =>
        {
            var head = guard.Head((string)c.Request.RouteValues["pool"]!);
            return Json(c, 200, Head(head));
        });
        app.MapPost("/v1/sign", SignAsync);
    }

    private Task ListAsync(HttpContext c) => Hardware(c, () =>
    {
        var objects = new JsonArray();
        foreach (var item in store.ListObjects())
        {
            objects.Add(new JsonObject { ["label"] = item.Label, ["kind"] = item.Kind });
        }

        return Json(c, 200, new JsonObject { [NodeWire.Custodian] = Custodian, ["objects"] = objects });
    });

    private Task PublicKeyAsync(HttpContext c) => Hardware(c, () => Json(c, 200, NodeWire.Key(store.GetRsaPublicKey(Label(c)))));

    private async Task GenerateAsync(HttpContext c)
    {
        var body = await ReadAsync(c).ConfigureAwait(false);
        if (NodeWire.TryLong(body?["bits"]) is not (2048 or 3072 or 4096) || body is null)
        {
            await Malformed(c, "bits must be 2048, 3072 or 4096").ConfigureAwait(false);
            return;
        }

        var bits = (int)body["bits"]!.GetValue<long>();
        await Hardware(c, () =>
        {
            var key = store.GenerateRsaKey(Label(c), bits);
            Audit(c, "generate", new JsonObject { ["label"] = Label(c), ["bits"] = bits }, "done", null, null);
            return Json(c, 200, NodeWire.Key(key));
        }).ConfigureAwait(false);
    }

    private Task DeleteAsync(HttpContext c) => Hardware(c, () =>
    {
        var label = Label(c);
        _imports?.Abandon(label);
        store.DeleteKey(label);
        shares.Delete(label);
        lock (_probes)
        {
            _probes.Remove(label);
        }

        Audit(c, "delete", new JsonObject { ["label"] = label }, "done", null, null);
        c.Response.StatusCode = 204;
        return Task.CompletedTask;
    });

    private async Task StartImportAsync(HttpContext c)
    {
        var body = await ReadAsync(c).ConfigureAwait(false);
        if (_imports is null)
        {
            await Error(c, 400, ShareStoreError.MechanismNotSupported, "this custodian's hardware cannot hold a Shoup share (PKCS#11 tokens only)").ConfigureAwait(false);
            return;
        }

        if (body?["persistent"] is not JsonValue p || !p.TryGetValue<bool>(out var persistent))
        {
            await Malformed(c, "persistent must be true or false").ConfigureAwait(false);
            return;
        }

        var label = Label(c);
        if (!persistent && (shares.Load(label) is not null || store.ListObjects().Any(o => o.Label == label)))
        {
            await Malformed(c, "a probe share needs a label of its own").ConfigureAwait(false);
            return;
        }

        try
        {
            var (id, transport) = await _imports.StartAsync(label, persistent, c.RequestAborted).ConfigureAwait(false);
            if (!persistent)
            {
                lock (_probes)
                {
                    _probes.Add(label);
                }
            }

            await Json(c, 200, new JsonObject { ["import"] = id, ["transport_key"] = NodeWire.Key(transport) }).ConfigureAwait(false);
        }
        catch (ShareStoreException e)
        {
            await Error(c, e).ConfigureAwait(false);
        }
    }

    private async Task FinishImportAsync(HttpContext c)
    {
        var body = await ReadAsync(c).ConfigureAwait(false);
        var label = Label(c);
        var id = (string)c.Request.RouteValues["id"]!;
        if (_imports is null || body is null || NodeWire.TryBytes(body["wrapped_kek"]) is not { } kek || NodeWire.TryBytes(body["wrapped_key"]) is not { } wrapped)
        {
            await Malformed(c, "wrapped_kek and wrapped_key (base64url) are required").ConfigureAwait(false);
            return;
        }

        bool probe;
        lock (_probes)
        {
            probe = _probes.Contains(label);
        }

        ShoupShareParameters? parameters = null;
        if (!probe)
        {
            if (NodeWire.TryInteger(body["modulus"]) is not { } n || NodeWire.TryInteger(body["exponent"]) is not { } e
                || NodeWire.TryLong(body["players"]) is not (>= 1 and <= ShoupCeremony.MaxCustodians) || NodeWire.TryInteger(body["verification_base"]) is not { } v
                || n.GetBitLength() < 2048 || v <= 1 || v >= n)
            {
                await Malformed(c, "a share is imported with its key's modulus, exponent, players and verification_base").ConfigureAwait(false);
                return;
            }

            parameters = new ShoupShareParameters(n, e, (int)body["players"]!.GetValue<long>(), v);
        }

        try
        {
            if (!await _imports.FinishAsync(id, label, new WrappedShare(kek, wrapped)).ConfigureAwait(false))
            {
                await Error(c, 404, ShareStoreError.KeyNotFound, "no import with this id is waiting for this label").ConfigureAwait(false);
                return;
            }

            if (parameters is not null)
            {
                shares.Save(label, parameters);
            }

            Audit(c, "import", new JsonObject { ["label"] = label, ["probe"] = probe }, "done", null, null);
            c.Response.StatusCode = 204;
        }
        catch (ShareStoreException e)
        {
            await Error(c, e).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A Shoup partial on a value the coordinator chose: only on a probe share (throwaway, this
    /// process) or on the share's pinned verification base v (vᵢ = v^sᵢ is public).
    /// </summary>
    private async Task ShoupPartialAsync(HttpContext c)
    {
        var body = await ReadAsync(c).ConfigureAwait(false);
        var label = Label(c);
        if (store is not IShoupShareStore shoup || NodeWire.TryBytes(body?["input"]) is not { } input)
        {
            await Malformed(c, "input (base64url) is required on a PKCS#11 custodian").ConfigureAwait(false);
            return;
        }

        bool probe;
        lock (_probes)
        {
            probe = _probes.Contains(label);
        }

        var pinned = probe ? null : shares.Load(label);
        var request = new JsonObject { ["label"] = label, ["input_sha256"] = Convert.ToHexStringLower(SHA256.HashData(input)) };
        if (!probe && (pinned is null || BigEndian.ToInteger(input) != pinned.VerificationBase))
        {
            Audit(c, "shoup-partial", request, "refused", nameof(GuardRefusal.RawSigningDisabled), "a chosen value is raised only on a probe share or the verification base");
            await Refuse(c, 403, nameof(GuardRefusal.RawSigningDisabled), "a Shoup partial on a chosen value is only for probe shares and the verification base", null).ConfigureAwait(false);
            return;
        }

        await Hardware(c, () =>
        {
            var partial = shoup.ShoupPartial(label, input);
            Audit(c, "shoup-partial", request, probe ? "probe" : "verification", null, null);
            return Json(c, 200, new JsonObject { [NodeWire.Partial] = Base64Url.Encode(partial) });
        }).ConfigureAwait(false);
    }

    private async Task SignAsync(HttpContext c)
    {
        var body = await ReadAsync(c).ConfigureAwait(false);
        var parsed = SignRequest.TryParse(body);
        if (parsed.Request is not { } request)
        {
            Audit(c, "sign", new JsonObject { ["key"] = NodeWire.TryString(body?["key"]) }, "refused", nameof(GuardRefusal.Malformed), parsed.Error);
            await Refuse(c, 400, nameof(GuardRefusal.Malformed), parsed.Error!, null).ConfigureAwait(false);
            return;
        }

        var summary = request.Summary();
        await _signing.WaitAsync(c.RequestAborted).ConfigureAwait(false);
        try
        {
            var guardRequest = new GuardRequest(request.Key, request.Kid, request.SigningInput, request.Justification, request.Ledger);
            var decision = guard.Check(guardRequest);
            if (!decision.Allowed)
            {
                var code = (decision.Refusal ?? GuardRefusal.Malformed).ToString();
                Audit(c, "sign", summary, "refused", code, decision.Detail);
                await Refuse(c, decision.Refusal == GuardRefusal.StaleLedger ? 409 : 403, code, decision.Detail, decision.Head).ConfigureAwait(false);
                return;
            }

            byte[] partial;
            try
            {
                partial = Raise(request);
            }
            catch (ShareStoreException e)
            {
                Audit(c, "sign", summary, "failed", e.Error.ToString(), e.Message);
                await Error(c, e).ConfigureAwait(false);
                return;
            }
            catch (RefusedInput e)
            {
                Audit(c, "sign", summary, "refused", nameof(GuardRefusal.Malformed), e.Message);
                await Refuse(c, 400, nameof(GuardRefusal.Malformed), e.Message, decision.Head).ConfigureAwait(false);
                return;
            }

            guard.Signed(guardRequest);
            Audit(c, "sign", summary, "signed", null, decision.Detail);
            await Json(c, 200, new JsonObject { [NodeWire.Partial] = Base64Url.Encode(partial), [NodeWire.Head] = Head(decision.Head), [NodeWire.Custodian] = Custodian }).ConfigureAwait(false);
        }
        finally
        {
            _signing.Release();
        }
    }

    /// <summary>The hardware raises a value the node computed itself from the signing input.</summary>
    private byte[] Raise(SignRequest request)
    {
        if (request.Scheme == KeyScheme.ProductRsa)
        {
            var own = store.GetRsaPublicKey(request.Label);
            var em = Custody.Nodes.NodePartialInputs.ProductRsa(request.SigningInput, request.Quorum, own)
                ?? throw new RefusedInput("this node's key is not a member of the quorum named in the request");
            return store.RsaRawPrivate(request.Label, BigEndian.ToBytes(em, own.ByteLength));
        }

        if (store is not IShoupShareStore shoup || shares.Load(request.Label) is not { } parameters)
        {
            throw new RefusedInput($"this node holds no Shoup share labelled '{request.Label}'");
        }

        var z = Custody.Nodes.NodePartialInputs.Shoup(request.SigningInput, parameters);
        return shoup.ShoupPartial(request.Label, BigEndian.ToBytes(z, BigEndian.ByteLength(parameters.Modulus)));
    }

    private void Audit(HttpContext c, string operation, JsonObject request, string outcome, string? code, string? detail)
    {
        var result = new JsonObject { ["result"] = outcome };
        if (code is not null)
        {
            result["code"] = code;
        }

        if (detail is not null)
        {
            result["detail"] = detail;
        }

        audit.Append(new JsonObject
        {
            ["op"] = operation,
            ["request"] = request,
            ["outcome"] = result,
            ["client"] = c.Connection.ClientCertificate?.GetCertHashString(HashAlgorithmName.SHA256).ToLowerInvariant(),
        });
    }

    private static JsonObject Head(LedgerHead head) => new() { ["seq"] = head.Sequence, ["hash"] = head.Hash };

    private static string Label(HttpContext c) => (string)c.Request.RouteValues["label"]!;

    private static async Task<JsonObject?> ReadAsync(HttpContext c)
    {
        try
        {
            return c.Request.ContentLength is 0 ? null : await JsonNode.ParseAsync(c.Request.Body, cancellationToken: c.RequestAborted).ConfigureAwait(false) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static async Task Hardware(HttpContext c, Func<Task> action)
    {
        try
        {
            if (c.Request.RouteValues.ContainsKey("label"))
            {
                ShareVault.Evidence.Identifier.Validate(Label(c), "Key label", "label");
            }

            await action().ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await Malformed(c, e.Message).ConfigureAwait(false);
        }
        catch (ShareStoreException e)
        {
            await Error(c, e).ConfigureAwait(false);
        }
    }

    private static Task Malformed(HttpContext c, string detail) => Refuse(c, 400, nameof(GuardRefusal.Malformed), detail, null);

    private static Task Refuse(HttpContext c, int status, string code, string detail, LedgerHead? head)
    {
        var body = new JsonObject { [NodeWire.Refused] = code, [NodeWire.Detail] = detail };
        if (head is not null)
        {
            body[NodeWire.Head] = Head(head);
        }

        return Json(c, status, body);
    }

    private static Task Error(HttpContext c, ShareStoreException e) => Error(c, e.Error switch
    {
        ShareStoreError.KeyNotFound => 404,
        ShareStoreError.KeyExists => 409,
        ShareStoreError.MechanismNotSupported or ShareStoreError.BadUri => 400,
        _ => 502,
    }, e.Error, e.Message);

    private static Task Error(HttpContext c, int status, ShareStoreError error, string detail) =>
        Json(c, status, new JsonObject { [NodeWire.Error] = error.ToString(), [NodeWire.Detail] = detail });

    private static async Task Json(HttpContext c, int status, JsonObject body)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        await c.Response.WriteAsync(body.ToJsonString(), Encoding.UTF8, c.RequestAborted).ConfigureAwait(false);
    }

    public void Dispose() => _signing.Dispose();

    private sealed class RefusedInput(string message) : Exception(message);
}
