using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using ShareVault.Claims;
using ShareVault.Evidence;

namespace ShareVault.Service;

/// <summary>Where the embedded broker listens.</summary>
public sealed record BrokerOptions
{
    public IPAddress Address { get; init; } = IPAddress.Loopback;

    /// <summary>Plain TCP port (0 disables it). Plain TCP is for loopback tests; devices use TLS.</summary>
    public int Port { get; init; }

    /// <summary>TLS port (0 disables it); needs <see cref="Certificate"/>.</summary>
    public int TlsPort { get; init; }

    /// <summary>The broker's TLS certificate with its private key (devices pin it).</summary>
    public X509Certificate2? Certificate { get; init; }
}

/// <summary>
/// An in-process MQTT broker (MQTTnet.Server) that authenticates every client as an enrolled device
/// — a TLS client certificate carrying the device's enrolled key, or username = device id with a
/// <see cref="DeviceCredentials"/> proof as password — and authorises per device: a device may
/// publish only to its own evidence and status topics and subscribe only to its own receipts and
/// status. Evidence goes straight to ingest (not routed to subscribers); anything else is refused
/// with MQTT 5 reason code 0x87 Not authorized (MQTT 5 §3.4.2.1) and recorded as a rejection.
/// </summary>
public sealed class EmbeddedBroker : IAsyncDisposable
{
    public const string ServiceClientId = "sharevault-service";
    private const string DeviceItem = "sharevault.device";

    private readonly ClaimsEngine _engine;
    private readonly EvidenceIngest _ingest;
    private readonly TimeProvider _time;
    private readonly MqttServer _server;
    private readonly ILogger _log;

    public EmbeddedBroker(ClaimsEngine engine, EvidenceIngest ingest, BrokerOptions options, TimeProvider time, ILogger<EmbeddedBroker>? logger = null)
    {
        _log = logger ?? NullLogger<EmbeddedBroker>.Instance;
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _ingest = ingest ?? throw new ArgumentNullException(nameof(ingest));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        ArgumentNullException.ThrowIfNull(options);
        var builder = new MqttServerFactory().CreateServerOptionsBuilder().WithPersistentSessions(true).WithMaxPendingMessagesPerClient(10_000);
        if (options.Port > 0)
        {
            builder.WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(options.Address).WithDefaultEndpointPort(options.Port);
        }
        else
        {
            builder.WithoutDefaultEndpoint();
        }

        if (options.TlsPort > 0)
        {
            var certificate = options.Certificate ?? throw new ArgumentException("A TLS port needs a certificate", nameof(options));
            builder.WithEncryptedEndpoint().WithEncryptedEndpointBoundIPAddress(options.Address).WithEncryptedEndpointPort(options.TlsPort)
                .WithEncryptionCertificate(certificate)
                .WithEncryptionSslProtocol(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13)
                // Client certificates are optional and self-signed: they are checked against the enrolled key below, not against a CA.
                .WithClientCertificate(AcceptSelfSignedClientCertificate, false);
        }

        var serverOptions = builder.Build();
        serverOptions.DefaultEndpointOptions.NoDelay = true;
        serverOptions.TlsEndpointOptions.NoDelay = true;
        _server = new MqttServerFactory().CreateMqttServer(serverOptions);
        _server.ValidatingConnectionAsync += ValidateAsync;
        _server.InterceptingPublishAsync += InterceptPublishAsync;
        _server.InterceptingSubscriptionAsync += InterceptSubscriptionAsync;
    }

    public Task StartAsync() => _server.StartAsync();

    /// <summary>Self-signed device certificates have no chain to validate; their key is matched to an enrolled device at CONNECT.</summary>
    private static bool AcceptSelfSignedClientCertificate(object sender, X509Certificate? certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors) =>
        (errors & ~(System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors | System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable)) == System.Net.Security.SslPolicyErrors.None;

    /// <summary>Publishes a service message (a receipt) to subscribed devices, QoS 1.</summary>
    public Task PublishAsync(string topic, byte[] payload, CancellationToken cancellationToken)
    {
        var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType("application/json").Build();
        return _server.InjectApplicationMessage(new InjectedMqttApplicationMessage(message) { SenderClientId = ServiceClientId }, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.StopAsync().ConfigureAwait(false);
        _server.Dispose();
    }

    private Task ValidateAsync(ValidatingConnectionEventArgs args)
    {
        var (device, reason) = Authenticate(args);
        if (device is null)
        {
            args.ReasonCode = reason == MqttConnectReasonCode.NotAuthorized ? reason : MqttConnectReasonCode.BadUserNameOrPassword;
            args.ReasonString = "not an enrolled device";

            // Client id, user name (a device id) and endpoint only: never the password (a device proof).
            _log.LogWarning("MQTT connection refused ({Reason}): client {ClientId}, user {User}, from {Endpoint}", args.ReasonCode, args.ClientId, args.UserName, args.RemoteEndPoint);
            return Task.CompletedTask;
        }

        _log.LogInformation("MQTT device {Device} connected from {Endpoint}", device, args.RemoteEndPoint);
        args.SessionItems[DeviceItem] = device;
        args.ReasonCode = MqttConnectReasonCode.Success;
        return Task.CompletedTask;
    }

    private (string? Device, MqttConnectReasonCode Reason) Authenticate(ValidatingConnectionEventArgs args)
    {
        if (args.ClientId == ServiceClientId)
        {
            return (null, MqttConnectReasonCode.NotAuthorized);
        }

        if (args.ClientCertificate is { } certificate)
        {
            // Certificate login: the certificate's key must be a device's enrolled key (like mosquitto's use_identity_as_username).
            var spki = certificate.PublicKey.ExportSubjectPublicKeyInfo();
            var device = _engine.ListDevices().FirstOrDefault(d => d.PublicKey.AsSpan().SequenceEqual(spki));
            if (device is not null && (string.IsNullOrEmpty(args.UserName) || args.UserName == device.Id))
            {
                return (device.Id, MqttConnectReasonCode.Success);
            }

            return (null, MqttConnectReasonCode.NotAuthorized);
        }

        if (args.UserName is { } user && _engine.Device(user) is { } enrolled
            && DeviceProof.Verify(user, args.Password, enrolled.PublicKey, _time.GetUtcNow(), out _))
        {
            return (user, MqttConnectReasonCode.Success);
        }

        return (null, MqttConnectReasonCode.BadUserNameOrPassword);
    }

    private async Task InterceptPublishAsync(InterceptingPublishEventArgs args)
    {
        if (args.ClientId == ServiceClientId)
        {
            return; // our own receipts
        }

        var device = args.SessionItems[DeviceItem] as string;
        var topic = args.ApplicationMessage.Topic;
        var parsed = EvidenceTopics.TryParse(topic, out var topicDevice, out var kind);
        if (device is not null && parsed && topicDevice == device && kind == EvidenceTopicKind.Evidence)
        {
            args.ProcessPublish = false; // consumed here; the PUBACK says only that the broker has it — the receipt says it is stored
            var evidence = new IncomingEvidence(topic, System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload), device)
            {
                AcceptsReceiptList = IncomingEvidence.AsksForReceiptList(args.ApplicationMessage),
            };
            await _ingest.SubmitAsync(evidence, args.CancellationToken).ConfigureAwait(false);
            return;
        }

        if (device is not null && parsed && topicDevice == device && kind == EvidenceTopicKind.Status)
        {
            return;
        }

        args.ProcessPublish = false;
        args.Response.ReasonCode = MqttPubAckReasonCode.NotAuthorized;
        _ingest.Metrics.RefusedByBroker();
        _log.LogWarning("MQTT publish by {Device} to {Topic} refused: not authorized", device ?? args.ClientId, topic);
        if (parsed && kind == EvidenceTopicKind.Evidence)
        {
            // Recorded (and counted) as TopicMismatch, with a receipt to the publisher only.
            await _ingest.SubmitAsync(new IncomingEvidence(topic, System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload), device ?? "?"), args.CancellationToken).ConfigureAwait(false);
        }
    }

    private Task InterceptSubscriptionAsync(InterceptingSubscriptionEventArgs args)
    {
        var device = args.SessionItems[DeviceItem] as string;
        var filter = args.TopicFilter.Topic;
        if (device is not null && (filter == EvidenceTopics.Receipts(device) || filter == EvidenceTopics.Status(device)))
        {
            return Task.CompletedTask;
        }

        args.ProcessSubscription = false;
        args.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
        _log.LogWarning("MQTT subscription by {Device} to {Filter} refused: not authorized", device ?? args.ClientId, filter);
        return Task.CompletedTask;
    }
}
