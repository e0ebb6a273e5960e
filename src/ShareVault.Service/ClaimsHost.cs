using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;

namespace ShareVault.Service;

/// <summary>Everything <c>sharevault serve</c> runs, with embedded defaults.</summary>
public sealed record ServiceOptions
{
    public required string DataDir { get; init; }

    /// <summary>SQLite file or PostgreSQL connection string (see <see cref="ClaimsDatabase.Open"/>); defaults to DATA_DIR/claims.db.</summary>
    public string? DatabasePath { get; init; }

    /// <summary>Embedded broker plain-TCP port on loopback (0 = off; for tests and local tools).</summary>
    public int MqttPort { get; init; }

    /// <summary>Embedded broker TLS port (0 = off). Its certificate is created once in DATA_DIR/broker.</summary>
    public int MqttTlsPort { get; init; } = 8883;

    public IPAddress MqttAddress { get; init; } = IPAddress.Loopback;

    /// <summary>HTTP API port on 127.0.0.1 (0 = any free port, null = no HTTP API).</summary>
    public int? HttpPort { get; init; } = 8080;

    /// <summary>External broker (mqtt://host:port or mqtts://…); when set, no embedded broker runs.</summary>
    public ExternalBrokerOptions? ExternalBroker { get; init; }

    public ClaimsOptions Claims { get; init; } = new();

    public IngestOptions Ingest { get; init; } = new();

    /// <summary>Set on <see cref="EvidenceIngest.AfterStoreBeforeReceipts"/> before the broker accepts anyone (crash tests: <see cref="FaultInjection"/>).</summary>
    public Func<IReadOnlyList<VerifiedRecord>, CancellationToken, Task>? AfterStoreBeforeReceipts { get; init; }

    /// <summary>
    /// Keys (SPKI, P-256 or RSA: <c>sharevault admin key create</c>) that log in as the service's operator,
    /// who may create pools and act as every pool's operator; a pool's recorded admin keys log in as that
    /// pool's operator. Empty: only pool administrators operate (and nobody may create a pool over HTTP).
    /// </summary>
    public IReadOnlyList<ShareVault.Claims.Ledger.AdminKey> OperatorKeys { get; init; } = [];

    /// <summary>
    /// The dashboard's origin as browsers reach it (e.g. https://pool.example), which passkeys are bound to
    /// (WebAuthn relying party id = its host). Default: http://localhost:PORT.
    /// </summary>
    public Uri? PublicOrigin { get; init; }

    /// <summary>JSON-RPC URL of the chain the pools' treasuries live on (<c>serve --chain</c>): the API and dashboard read each treasury's balance there. Null: not shown.</summary>
    public string? ChainRpcUrl { get; init; }

    /// <summary>
    /// How often payouts, checkpoints and gap time-outs are looked at when no evidence arrives (more than
    /// zero); also the wait before the first retry of a round that failed.
    /// </summary>
    public TimeSpan HousekeepingInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Longest wait between two retries of a failed housekeeping round (custodians away, the database
    /// unreachable): the wait doubles from <see cref="HousekeepingInterval"/> up to this (more than zero;
    /// an interval longer than this is itself the cap).
    /// </summary>
    public TimeSpan HousekeepingRetryDelayMax { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of range (the ingest options are checked by <see cref="IngestOptions.Validate"/>).</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HousekeepingInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HousekeepingRetryDelayMax, TimeSpan.Zero);
    }
}

/// <summary>
/// The running claims service: SQLite, the claims engine, ingest, the embedded broker (or a
/// subscription to an external one), the HTTP API, and a housekeeping loop that signs payouts and
/// checkpoints and moves past stale gaps.
/// </summary>
public sealed class ClaimsHost : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private Task? _housekeeping;
    private ILogger _log = NullLogger.Instance;
    private WebApplication? _http;
    private ResiliencePipeline _housekeepingRetry = ResiliencePipeline.Empty;

    private ClaimsHost(ServiceOptions options, ClaimsDatabase db, ClaimsEngine engine, EvidenceIngest ingest)
    {
        Options = options;
        Database = db;
        Engine = engine;
        Ingest = ingest;
    }

    public ServiceOptions Options { get; }

    public ClaimsDatabase Database { get; }

    public ClaimsEngine Engine { get; }

    public EvidenceIngest Ingest { get; }

    public EmbeddedBroker? Broker { get; private set; }

    public ExternalBrokerSource? External { get; private set; }

    /// <summary>The HTTP API's base address, e.g. http://127.0.0.1:8080.</summary>
    public Uri? HttpAddress { get; private set; }

    /// <summary>SHA-256 fingerprint of the embedded broker's TLS certificate (devices pin it).</summary>
    public string? BrokerCertificateFingerprint { get; private set; }

    /// <summary>Errors seen by the housekeeping loop (e.g. a custodian unreachable while signing); it keeps retrying.</summary>
    public string? LastHousekeepingError { get; private set; }

    public TimeProvider Time { get; private set; } = TimeProvider.System;

    public static async Task<ClaimsHost> StartAsync(ServiceOptions options, IPoolSigner signer, TimeProvider time, CancellationToken cancellationToken, ILoggerFactory? logging = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var db = ClaimsDatabase.Open(options.DatabasePath ?? Path.Combine(options.DataDir, "claims.db"));
        var engine = new ClaimsEngine(db, signer, time, options.Claims);
        EmbeddedBroker? broker = null;
        ExternalBrokerSource? external = null;
        var loggers = logging ?? NullLoggerFactory.Instance;
        var ingest = new EvidenceIngest(engine, (topic, payload, ct) =>
            broker is not null ? broker.PublishAsync(topic, payload, ct) : external!.PublishAsync(topic, payload, ct), time, options.Ingest, loggers.CreateLogger<EvidenceIngest>());
        var host = new ClaimsHost(options, db, engine, ingest) { _log = loggers.CreateLogger<ClaimsHost>(), Time = time };
        host._housekeepingRetry = HousekeepingRetry(options, time, host.OnHousekeepingRetryAsync);
        try
        {
            ingest.BatchCommitted += () => host._wake.Release();
            ingest.AfterStoreBeforeReceipts = options.AfterStoreBeforeReceipts;
            ingest.Start();
            if (options.ExternalBroker is { } externalOptions)
            {
                external = new ExternalBrokerSource(ingest, externalOptions, loggers.CreateLogger<ExternalBrokerSource>(), time);
                host.External = external; // disposed with the host, also when the start below fails
                await external.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var certificate = options.MqttTlsPort > 0 ? BrokerCertificate.LoadOrCreate(Path.Combine(options.DataDir, "broker"), time) : null;
                host.BrokerCertificateFingerprint = certificate is null ? null : Convert.ToHexStringLower(certificate.GetCertHash(System.Security.Cryptography.HashAlgorithmName.SHA256));
                broker = new EmbeddedBroker(engine, ingest, new BrokerOptions
                {
                    Address = options.MqttAddress,
                    Port = options.MqttPort,
                    TlsPort = options.MqttTlsPort,
                    Certificate = certificate,
                }, time, loggers.CreateLogger<EmbeddedBroker>());
                try
                {
                    await broker.StartAsync().ConfigureAwait(false);
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    var ports = string.Join(" and ", new[] { (options.MqttPort, "mqtt"), (options.MqttTlsPort, "mqtts") }.Where(p => p.Item1 > 0).Select(p => $"{p.Item2} {p.Item1}"));
                    throw new IOException($"The embedded MQTT broker cannot listen on {options.MqttAddress} ({ports}): {e.Message}", e);
                }
                host.Broker = broker;
            }

            if (options.HttpPort is not null)
            {
                await host.StartHttpAsync(logging, cancellationToken).ConfigureAwait(false);
            }

            host._housekeeping = Task.Run(() => host.HousekeepAsync(host._stop.Token), CancellationToken.None);
            return host;
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Signs due payouts and checkpoints now (also done in the background).</summary>
    public async Task HousekeepOnceAsync(CancellationToken cancellationToken)
    {
        await Engine.AdvancePastStaleGapsAsync(cancellationToken).ConfigureAwait(false);
        await Engine.EvaluateSilencesAsync(cancellationToken).ConfigureAwait(false);
        await Engine.ProcessPayoutsAsync(cancellationToken).ConfigureAwait(false);
        await Engine.CheckpointDueAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_housekeeping is not null)
        {
            try
            {
                await _housekeeping.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        if (_http is not null)
        {
            await _http.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await _http.DisposeAsync().ConfigureAwait(false);
        }

        if (Broker is not null)
        {
            await Broker.DisposeAsync().ConfigureAwait(false);
        }

        if (External is not null)
        {
            await External.DisposeAsync().ConfigureAwait(false);
        }

        await Ingest.DisposeAsync().ConfigureAwait(false);
        Engine.Dispose();
        Database.Dispose();
        _stop.Dispose();
        _wake.Dispose();
    }

    /// <summary>
    /// The retry of a failed housekeeping round (Polly, driven by <paramref name="time"/>): tried again
    /// until it succeeds, waiting <see cref="ServiceOptions.HousekeepingInterval"/> doubled each time up to
    /// <see cref="ServiceOptions.HousekeepingRetryDelayMax"/> (or the interval, if longer), without jitter (one loop per service). Every
    /// exception is retried (signing fails while custodians are away, the database may be unreachable;
    /// nothing is lost: claims stay approved) except the cancellation of a stop, which ends the wait at once.
    /// </summary>
    internal static ResiliencePipeline HousekeepingRetry(ServiceOptions options, TimeProvider time, Func<OnRetryArguments<object>, ValueTask> onRetry)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = options.HousekeepingInterval,
                MaxDelay = options.HousekeepingRetryDelayMax > options.HousekeepingInterval ? options.HousekeepingRetryDelayMax : options.HousekeepingInterval,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && !(e is OperationCanceledException && args.Context.CancellationToken.IsCancellationRequested)),
                OnRetry = onRetry,
            })
            .Build();
    }

    private async Task HousekeepAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                await _wake.WaitAsync(Options.HousekeepingInterval, cancellationToken).ConfigureAwait(false);
                while (_wake.CurrentCount > 0)
                {
                    await _wake.WaitAsync(cancellationToken).ConfigureAwait(false);
                }

                await _housekeepingRetry.ExecuteAsync(static async (host, ct) => await host.HousekeepOnceAsync(ct).ConfigureAwait(false), this, cancellationToken).ConfigureAwait(false);
                LastHousekeepingError = null;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped, possibly in the middle of a retry wait.
        }
    }

    private ValueTask OnHousekeepingRetryAsync(OnRetryArguments<object> args)
    {
        var e = args.Outcome.Exception!;
        LastHousekeepingError = e.GetType().Name + ": " + e.Message;
        _log.LogWarning(e, "Housekeeping (gaps, payouts, checkpoints) failed (try {Attempt}); retrying in {Delay}", args.AttemptNumber + 1, args.RetryDelay);
        return ValueTask.CompletedTask;
    }

    /// <summary>The HTTP API's mapped endpoints (for the test that holds docs/openapi.json to them).</summary>
    internal IReadOnlyList<Microsoft.AspNetCore.Http.Endpoint> HttpEndpoints() =>
        _http is null ? [] : [.. _http.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints];

    private async Task StartHttpAsync(ILoggerFactory? logging, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, Options.HttpPort!.Value));
        builder.Logging.ClearProviders();
        if (logging is not null)
        {
            // ASP.NET's own request lines carry the query string (member data, keys): warnings and up only.
            builder.Logging.AddProvider(new ForwardingLoggerProvider(logging)).AddFilter("Microsoft.AspNetCore", LogLevel.Warning).AddFilter("Microsoft.Hosting", LogLevel.Warning)

                // HttpApi logs every 5xx with its exception, method and route; ASP.NET's copy of the same would double it.
                .AddFilter("Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", LogLevel.None);
        }

        HttpApi.Configure(builder.Services);
        var app = builder.Build();
        var gate = new Http.MemberGate(Engine, Options.OperatorKeys, () =>
        {
            var origin = Options.PublicOrigin ?? new Uri($"http://localhost:{HttpAddress!.Port}");
            return new ShareVault.Claims.Ledger.WebAuthnBinding(origin.Host, origin.GetLeftPart(UriPartial.Authority));
        }, Time, logging?.CreateLogger("ShareVault.Service.Members"));
        HttpApi.Map(app, this, gate);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _http = app;
        var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features
            .Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses;
        HttpAddress = new Uri(addresses.First());
    }
}
