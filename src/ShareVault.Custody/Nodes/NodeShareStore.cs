using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Security;
using System.Numerics;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Nodes;

/// <summary>
/// A custodian that is a custody node (<c>sharevault node run</c>) reached over mutual TLS: the
/// ceremony operations (generate, public key, Shoup import in two steps, delete, list) go to the
/// node's <c>/v1</c> API, and partials are asked for with the signing input, the justification and
/// the ledger entries after the node's head, never as a raw value to raise. Transport errors are
/// retried a bounded number of times within the caller's deadline.
/// </summary>
internal sealed class NodeShareStore : IShoupShareStore, IJustifyingCustodian, IPinnedShoupImport
{
    /// <summary>Attempts per request on a transport error (connection refused or reset); the deadline bounds them too.</summary>
    internal const int Attempts = 3;

    private static readonly TimeSpan[] Backoff = [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200)];
    private static readonly TimeSpan CeremonyTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// A node that gave a partial or a health answer this recently is taken as answering without
    /// another health check: the check cost every signature a round trip to every node (about 15 %
    /// of a 2-of-3 signature through nodes in the nodes benchmark). A node that froze within this
    /// window costs its partial's deadline instead of the health check's; a transport error clears it.
    /// </summary>
    internal static readonly TimeSpan FreshFor = TimeSpan.FromSeconds(1);

    private readonly HttpClient _http;
    private readonly NodeUri _uri;
    private readonly Dictionary<string, long> _heads = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _answeredAt; // Stopwatch timestamp of the last good answer; 0: none since the last transport error

    private NodeShareStore(NodeUri uri, HttpClient http)
    {
        _uri = uri;
        _http = http;
    }

    public string CustodianName => _uri.Custodian;

    /// <summary>Opens the client of a node custodian (no network yet): reads the coordinator's certificate and the node CA.</summary>
    public static IShareStore Open(CustodianAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var uri = NodeUri.Parse(address.Uri);
        if (uri.ClientCertificatePath is null || uri.NodeCaPath is null)
        {
            throw new ShareStoreException(ShareStoreError.BadUri,
                $"Custodian '{uri.Custodian}' is a custody node: name the coordinator's client certificate and the node CA (client-cert=, node-ca= in its URI, or {NodeUri.ClientCertificateVariable} and {NodeUri.NodeCaVariable})");
        }

        X509Certificate2 client, ca;
        try
        {
            client = NodeTls.LoadWithKey(uri.ClientCertificatePath, uri.ClientKeyPath);
            ca = NodeTls.LoadCertificate(uri.NodeCaPath);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ShareStoreException(ShareStoreError.BadUri, $"Cannot read the client certificate or node CA of custodian '{uri.Custodian}': {e.Message}");
        }

        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = [client],
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => NodeTls.ValidateServer(certificate, errors, ca),
            },
        };
        return new NodeShareStore(uri, new HttpClient(handler) { BaseAddress = uri.BaseAddress, Timeout = Timeout.InfiniteTimeSpan });
    }

    public RsaPublicKey GenerateRsaKey(string objectLabel, int bits)
    {
        var (status, body) = Call(HttpMethod.Post, $"v1/keys/{Escape(objectLabel)}", new JsonObject { ["bits"] = bits });
        return status == HttpStatusCode.OK && NodeWire.TryKey(body) is { } key ? key : throw Failure(status, body, "generate a key");
    }

    public RsaPublicKey GetRsaPublicKey(string objectLabel)
    {
        var (status, body) = Call(HttpMethod.Get, $"v1/keys/{Escape(objectLabel)}", null);
        return status == HttpStatusCode.OK && NodeWire.TryKey(body) is { } key ? key : throw Failure(status, body, "read a public key");
    }

    /// <summary>A node raises only values it computed from a message it judged: there is no raw operation over the wire.</summary>
    public byte[] RsaRawPrivate(string objectLabel, ReadOnlySpan<byte> input) =>
        throw new ShareStoreException(ShareStoreError.MechanismNotSupported, $"Custody node '{CustodianName}' computes partials only from a signing request it checked");

    public void DeleteKey(string objectLabel)
    {
        var (status, body) = Call(HttpMethod.Delete, $"v1/keys/{Escape(objectLabel)}", null);
        if (status is not (HttpStatusCode.NoContent or HttpStatusCode.OK))
        {
            throw Failure(status, body, "delete a key");
        }
    }

    public IReadOnlyList<StoredObject> ListObjects()
    {
        var (status, body) = Call(HttpMethod.Get, "v1/keys", null);
        if (status != HttpStatusCode.OK || body?["objects"] is not JsonArray objects)
        {
            throw Failure(status, body, "list its objects");
        }

        return [.. objects.OfType<JsonObject>().Select(o => new StoredObject(NodeWire.TryString(o["label"]) ?? "?", NodeWire.TryString(o["kind"]) ?? "?"))];
    }

    /// <summary>A throwaway (probe) share: the node keeps it as a session object and raises any value on it.</summary>
    public void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, bool persistent)
    {
        if (persistent)
        {
            throw new InvalidOperationException("A custody node is told a share's public parameters at import: use the ceremony's import with ShoupShareParameters");
        }

        Import(objectLabel, wrap, null);
    }

    public void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, ShoupShareParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Import(objectLabel, wrap, parameters);
    }

    /// <summary>A partial on a probe share, or on the share's verification base v (vᵢ is public); the node refuses anything else.</summary>
    public byte[] ShoupPartial(string objectLabel, ReadOnlySpan<byte> z)
    {
        var (status, body) = Call(HttpMethod.Post, $"v1/keys/{Escape(objectLabel)}/shoup-partial", new JsonObject { ["input"] = Base64Url.Encode(z) });
        return status == HttpStatusCode.OK && NodeWire.TryBytes(body?[NodeWire.Partial]) is { } partial ? partial : throw Failure(status, body, "compute a Shoup partial");
    }

    public async Task<bool> AnswersAsync(TimeSpan deadline, CancellationToken cancellationToken)
    {
        var answeredAt = Volatile.Read(ref _answeredAt);
        if (answeredAt != 0 && Stopwatch.GetElapsedTime(answeredAt) < FreshFor)
        {
            return true;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(deadline);
        try
        {
            var (status, body) = await SendAsync(HttpMethod.Get, "v1/health", null, timeout.Token).ConfigureAwait(false);
            var answers = status == HttpStatusCode.OK && NodeWire.TryString(body?[NodeWire.Custodian]) == CustodianName;
            if (answers)
            {
                Volatile.Write(ref _answeredAt, Stopwatch.GetTimestamp());
            }

            return answers;
        }
        catch (Exception e) when (e is ShareStoreException or OperationCanceledException)
        {
            return false;
        }
    }

    public async Task<BigInteger> PartialAsync(JustifiedPartialRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pool = request.Justification is { } j ? NodeWire.TryString(j.Justification["pool"]) : null;
        long? after = null;
        if (pool is not null)
        {
            lock (_gate)
            {
                after = _heads.TryGetValue(pool, out var known) ? known : null;
            }

            after ??= await HeadAsync(pool, cancellationToken).ConfigureAwait(false);
        }

        // At most one resend: the node answers StaleLedger with its head when the segment starts elsewhere.
        for (var round = 0; ; round++)
        {
            var body = SignRequest(request, after);
            var (status, answer) = await SendAsync(HttpMethod.Post, "v1/sign", body, cancellationToken).ConfigureAwait(false);
            var head = NodeWire.TryLong(answer?[NodeWire.Head]?["seq"]);
            if (pool is not null && head is { } seen)
            {
                lock (_gate)
                {
                    _heads[pool] = seen;
                }
            }

            if (status == HttpStatusCode.OK)
            {
                var partial = NodeWire.TryInteger(answer?[NodeWire.Partial])
                    ?? throw new CustodianRefusedException("BadAnswer", "the node's answer carries no partial");
                Volatile.Write(ref _answeredAt, Stopwatch.GetTimestamp());
                return partial;
            }

            if (status == HttpStatusCode.Conflict && round == 0 && pool is not null && head is not null)
            {
                after = head;
                continue;
            }

            if (NodeWire.TryString(answer?[NodeWire.Refused]) is { } code)
            {
                throw new CustodianRefusedException(code, NodeWire.TryString(answer?[NodeWire.Detail]) ?? string.Empty);
            }

            throw Failure(status, answer, "sign");
        }
    }

    private async Task<long> HeadAsync(string pool, CancellationToken cancellationToken)
    {
        var (status, body) = await SendAsync(HttpMethod.Get, $"v1/pools/{Escape(pool)}/head", null, cancellationToken).ConfigureAwait(false);
        return status == HttpStatusCode.OK && NodeWire.TryLong(body?["seq"]) is { } seq ? seq : throw Failure(status, body, "tell its ledger head");
    }

    private static JsonObject SignRequest(JustifiedPartialRequest request, long? after)
    {
        var body = new JsonObject
        {
            ["key"] = request.KeyName,
            ["label"] = request.ObjectLabel,
            ["scheme"] = request.Scheme.ToText(),
            ["kid"] = request.Kid,
            ["signing_input"] = Base64Url.Encode(request.SigningInput),
        };
        if (request.Scheme == KeyScheme.ProductRsa)
        {
            body["quorum"] = new JsonArray([.. request.QuorumKeys.Select(k => (JsonNode)NodeWire.Key(k))]);
        }

        if (request.Justification is { } justification)
        {
            body["justification"] = justification.Justification.DeepClone();
            body["ledger"] = justification.LedgerAfter(after ?? 0);
        }

        return body;
    }

    private void Import(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, ShoupShareParameters? parameters)
    {
        ArgumentNullException.ThrowIfNull(wrap);
        var (status, body) = Call(HttpMethod.Post, $"v1/keys/{Escape(objectLabel)}/import", new JsonObject { ["persistent"] = parameters is not null });
        if (status != HttpStatusCode.OK || NodeWire.TryString(body?["import"]) is not { } id || NodeWire.TryKey(body?["transport_key"]) is not { } transport)
        {
            throw Failure(status, body, "start a share import");
        }

        var wrapped = wrap(transport);
        var finish = new JsonObject
        {
            ["wrapped_kek"] = Base64Url.Encode(wrapped.WrappedKek),
            ["wrapped_key"] = Base64Url.Encode(wrapped.WrappedKey),
        };
        if (parameters is not null)
        {
            finish["modulus"] = NodeWire.Big(parameters.Modulus);
            finish["exponent"] = NodeWire.Big(parameters.Exponent);
            finish["players"] = parameters.Players;
            finish["verification_base"] = NodeWire.Big(parameters.VerificationBase);
        }

        (status, body) = Call(HttpMethod.Put, $"v1/keys/{Escape(objectLabel)}/import/{Escape(id)}", finish);
        if (status is not (HttpStatusCode.NoContent or HttpStatusCode.OK))
        {
            throw Failure(status, body, "import a share");
        }
    }

    private (HttpStatusCode Status, JsonObject? Body) Call(HttpMethod method, string path, JsonObject? body)
    {
        using var timeout = new CancellationTokenSource(CeremonyTimeout);
        return SendAsync(method, path, body, timeout.Token).GetAwaiter().GetResult();
    }

    /// <summary>One request, retried on transport errors (<see cref="Attempts"/>, short backoff) while the token allows.</summary>
    private async Task<(HttpStatusCode Status, JsonObject? Body)> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var request = new HttpRequestMessage(method, path);
                if (body is not null)
                {
                    request.Content = JsonContent.Create(body);
                }

                using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                JsonObject? answer = null;
                if (response.Content.Headers.ContentType?.MediaType == "application/json")
                {
                    try
                    {
                        answer = await response.Content.ReadFromJsonAsync<JsonObject>(cancellationToken).ConfigureAwait(false);
                    }
                    catch (System.Text.Json.JsonException)
                    {
                        answer = null;
                    }
                }

                return (response.StatusCode, answer);
            }
            catch (HttpRequestException e) when (e.InnerException is AuthenticationException)
            {
                Volatile.Write(ref _answeredAt, 0);
                throw new ShareStoreException(ShareStoreError.DeviceUnreachable, $"custody node '{CustodianName}' at {_uri.BaseAddress}: TLS handshake failed ({e.InnerException.Message})");
            }
            catch (HttpRequestException e)
            {
                Volatile.Write(ref _answeredAt, 0);
                if (attempt >= Attempts)
                {
                    throw new ShareStoreException(ShareStoreError.DeviceUnreachable, $"custody node '{CustodianName}' at {_uri.BaseAddress}: {e.Message} (after {attempt} attempts)");
                }

                await Task.Delay(Backoff[Math.Min(attempt - 1, Backoff.Length - 1)], cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The node's error answer as the hardware boundary's exception (the node names the <see cref="ShareStoreError"/>).</summary>
    private ShareStoreException Failure(HttpStatusCode status, JsonObject? body, string what)
    {
        var detail = NodeWire.TryString(body?[NodeWire.Detail]) ?? $"HTTP {(int)status}";
        if (NodeWire.TryString(body?[NodeWire.Refused]) is { } code)
        {
            return new ShareStoreException(ShareStoreError.DeviceError, $"custody node '{CustodianName}' refused to {what}: {code} ({detail})");
        }

        var error = Enum.TryParse<ShareStoreError>(NodeWire.TryString(body?[NodeWire.Error]), out var named) ? named : ShareStoreError.DeviceError;
        return new ShareStoreException(error, $"custody node '{CustodianName}' could not {what}: {detail}");
    }

    private static string Escape(string segment) => Uri.EscapeDataString(segment);

    public void Dispose() => _http.Dispose();
}
