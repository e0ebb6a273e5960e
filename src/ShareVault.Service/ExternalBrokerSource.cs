using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Evidence;

namespace ShareVault.Service;

/// <summary>How to reach an external broker (mosquitto, EMQX).</summary>
public sealed record ExternalBrokerOptions
{
    /// <summary>mqtt://host:port or mqtts://host:port.</summary>
    public required Uri Url { get; init; }

    /// <summary>MQTT 5 shared subscription group (MQTT 5 §4.8.2): instances in one group split the evidence stream.</summary>
    public string ShareGroup { get; init; } = "sharevault";

    public string ClientId { get; init; } = "sharevault-" + Environment.MachineName.ToLowerInvariant() + "-" + Environment.ProcessId;

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>CA that signed the broker's certificate (PEM file); required for mqtts.</summary>
    public string? CaFile { get; init; }

    /// <summary>Client certificate and key (PEM) for certificate login (mosquitto use_identity_as_username).</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>
    /// How long the broker has to answer the CONNECT and the SUBSCRIBE (CONNACK, SUBACK). MQTTnet applies its
    /// own time-out only to calls made without a cancellation token, so a broker that takes the TCP connection
    /// and never answers would otherwise hold the service's start, or its reconnect, forever.
    /// </summary>
    public TimeSpan AnswerTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Subscribes to the evidence of every device on an external broker with a shared subscription
/// (<c>$share/GROUP/sharevault/v1/devices/+/evidence</c>), QoS 1 with a persistent session, and
/// acknowledges each PUBLISH only after ingest has stored (or rejected) it, so a crash makes the
/// broker redeliver. Per-device topic authorisation is the broker's ACL job here (mosquitto:
/// <c>pattern write sharevault/v1/devices/%u/evidence</c>); ingest still refuses a record whose signer
/// is not the topic's device. A lost connection (the broker restarted, the network dropped) is
/// re-established in the background, waiting 1 s, then twice as long each time up to 30 s, and the
/// subscription is made again (a broker without persistence forgets it); devices keep their records
/// in their outboxes meanwhile, so nothing is lost, only delayed.
/// </summary>
public sealed class ExternalBrokerSource(EvidenceIngest ingest, ExternalBrokerOptions options, ILogger<ExternalBrokerSource>? logger = null, TimeProvider? time = null) : IAsyncDisposable
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromSeconds(30);

    private readonly IMqttClient _client = new MqttClientFactory().CreateMqttClient();
    private readonly ILogger _log = logger ?? NullLogger<ExternalBrokerSource>.Instance;
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _reconnectGate = new();
    private MqttClientOptions? _connectOptions;
    private Task _reconnecting = Task.CompletedTask;

    /// <summary>How many times the connection was re-established after a loss.</summary>
    public int Reconnects { get; private set; }

    /// <summary>The broker's port: the URL's, or MQTT's default for its scheme.</summary>
    private int Port => options.Url.Port > 0 ? options.Url.Port : options.Url.Scheme == "mqtts" ? 8883 : 1883;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(options.Url.Host, Port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(options.ClientId)
            .WithCleanStart(false)
            .WithSessionExpiryInterval(24 * 3600)
            .WithReceiveMaximum(2000)
            .WithKeepAlivePeriod(TimeSpan.FromSeconds(30));
        if (options.Username is not null)
        {
            builder.WithCredentials(options.Username, options.Password);
        }

        if (options.Url.Scheme == "mqtts")
        {
            var trust = new X509Certificate2Collection();
            if (options.CaFile is not null)
            {
                trust.ImportFromPemFile(options.CaFile);
            }

            var clientCertificates = new List<X509Certificate2>();
            if (options.CertFile is not null && options.KeyFile is not null)
            {
                using var pem = X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile);
                clientCertificates.Add(X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null));
            }

            builder.WithTlsOptions(tls => tls.UseTls().WithTrustChain(trust).WithClientCertificates(clientCertificates).WithTargetHost(options.Url.Host));
        }

        _connectOptions = builder.Build();
        _client.ApplicationMessageReceivedAsync += OnMessageAsync;
        _client.DisconnectedAsync += OnDisconnectedAsync;
        await ConnectAndSubscribeAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task ConnectAndSubscribeAsync(CancellationToken cancellationToken)
    {
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(EvidenceTopics.SharedEvidence(options.ShareGroup)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce))
            .Build();
        MqttClientSubscribeResult result;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.AnswerTimeout);
        try
        {
            await _client.ConnectAsync(_connectOptions!, deadline.Token).ConfigureAwait(false);
            result = await _client.SubscribeAsync(subscribe, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // MQTTnet reports a cancelled CONNECT as a failed connection ("Connection closed"), not as a cancellation.
            // An IOException: the network failed the service (an expected failure of `serve`, CommandFailures).
            throw new IOException(string.Create(CultureInfo.InvariantCulture,
                $"The MQTT broker {options.Url.Host}:{Port} did not answer CONNECT and SUBSCRIBE within {options.AnswerTimeout.TotalSeconds:0.###} s"), e);
        }

        var code = result.Items.First().ResultCode;
        if (code > MqttClientSubscribeResultCode.GrantedQoS2)
        {
            throw new InvalidOperationException($"The broker refused the evidence subscription: {code}");
        }

        _log.LogInformation("Subscribed to evidence on {Broker} as {ClientId} (shared group {Group})", options.Url.Host, options.ClientId, options.ShareGroup);
    }

    public Task PublishAsync(string topic, byte[] payload, CancellationToken cancellationToken) =>
        _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType("application/json").Build(), cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task reconnecting;
        lock (_reconnectGate)
        {
            reconnecting = _reconnecting;
        }

        await reconnecting.ConfigureAwait(false); // it ends on cancellation, never throws
        if (_client.IsConnected)
        {
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.NormalDisconnection).Build()).ConfigureAwait(false);
        }

        _client.Dispose();
        _stopping.Dispose();
    }

    private async Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        args.AutoAcknowledge = false;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var evidence = new IncomingEvidence(args.ApplicationMessage.Topic, System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload), null)
        {
            Done = done,
            AcceptsReceiptList = IncomingEvidence.AsksForReceiptList(args.ApplicationMessage),
        };
        await ingest.SubmitAsync(evidence, CancellationToken.None).ConfigureAwait(false);
        // Acknowledge only a message ingest has handled: Done is cancelled when ingest stops first, and
        // then the broker must keep the message and redeliver it to the next session.
        _ = done.Task.ContinueWith(_ => AcknowledgeAsync(args), CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously | TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default).Unwrap();
    }

    private async Task AcknowledgeAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        try
        {
            await args.AcknowledgeAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or OperationCanceledException)
        {
            // Stored, not acknowledged: the broker redelivers it and ingest answers it as a duplicate.
            _log.LogWarning(e, "Acknowledging evidence on {Topic} to the broker failed; it will be redelivered (a duplicate)", args.ApplicationMessage.Topic);
        }
    }

    private Task OnDisconnectedAsync(MqttClientDisconnectedEventArgs args)
    {
        if (_stopping.IsCancellationRequested || !args.ClientWasConnected)
        {
            return Task.CompletedTask; // shutting down, or a failed attempt of the reconnect loop itself
        }

        _log.LogWarning(args.Exception, "Lost the connection to broker {Broker} ({Reason}); reconnecting, evidence waits in the devices' outboxes meanwhile", options.Url.Host, args.Reason);
        lock (_reconnectGate)
        {
            if (_reconnecting.IsCompleted)
            {
                _reconnecting = Task.Run(() => ReconnectAsync(_stopping.Token));
            }
        }

        return Task.CompletedTask;
    }

    private async Task ReconnectAsync(CancellationToken cancellationToken)
    {
        var wait = FirstRetry;
        for (var attempt = 1; !cancellationToken.IsCancellationRequested; attempt++)
        {
            try
            {
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
                await ConnectAndSubscribeAsync(cancellationToken).ConfigureAwait(false);
                Reconnects++;
                _log.LogInformation("Reconnected to broker {Broker} after {Attempts} attempt(s); evidence flows again", options.Url.Host, attempt);
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or InvalidOperationException or OperationCanceledException or System.Net.Sockets.SocketException or IOException)
            {
                if (_client.IsConnected)
                {
                    // Connected but not subscribed: start the next attempt from a clean connection.
                    await _client.DisconnectAsync(cancellationToken: CancellationToken.None).ConfigureAwait(false);
                }

                wait = TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, LongestRetry.Ticks));
                _log.LogWarning("Reconnecting to broker {Broker} failed (attempt {Attempt}: {Reason}); next try in {Seconds} s", options.Url.Host, attempt, e.Message, wait.TotalSeconds);
            }
        }
    }
}
