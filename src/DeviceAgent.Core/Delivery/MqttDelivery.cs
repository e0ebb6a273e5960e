using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using DeviceAgent.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;
using Polly;
using Polly.Retry;
using ShareVault.Evidence;

namespace DeviceAgent.Delivery;

/// <summary>
/// Delivers the outbox over MQTT 5 (MQTTnet): QoS 1 publishes to the device's evidence topic, a
/// persistent session (clean start false, session expiry &gt; 0) so receipts queued while the device
/// is away still arrive, a retained status with a matching last will, TLS with a pinned CA, and
/// reconnects with exponential back-off and jitter (<see cref="ReconnectRetry"/>). A PUBACK only means the broker took the
/// message (MQTT 5 §4.3.2); records leave the outbox when the service's receipt arrives.
/// </summary>
public sealed class MqttDelivery : IAsyncDisposable
{
    private readonly string _deviceId;
    private readonly BrokerOptions _options;
    private readonly Outbox _outbox;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Func<DeviceStatus>? _status;
    private readonly ResiliencePipeline _reconnect;
    private readonly IMqttClient _client;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _inFlight = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _receiptArrived = new(0, int.MaxValue);

    public MqttDelivery(string deviceId, BrokerOptions options, Outbox outbox, TimeProvider time, ILogger? logger = null, Func<DeviceStatus>? status = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ArgumentNullException.ThrowIfNull(outbox);
        ArgumentNullException.ThrowIfNull(time);
        if (!Identifier.IsValid(deviceId))
        {
            throw new ArgumentException("A device id is 1-64 characters from [A-Za-z0-9._-]", nameof(deviceId));
        }

        _deviceId = deviceId;
        _options = options;
        _outbox = outbox;
        _time = time;
        _log = logger ?? NullLogger.Instance;
        _status = status;
        _reconnect = ReconnectRetry(options, time, OnReconnectRetryAsync);
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessageAsync;
    }

    /// <summary>Connections set up so far (connected, subscribed to receipts, status published).</summary>
    public int Connections { get; private set; }

    /// <summary>Publishes the broker acknowledged (including resends).</summary>
    public long Published { get; private set; }

    /// <summary>Receipts that matched a record in the outbox.</summary>
    public long ReceiptsMatched { get; private set; }

    public bool IsConnected => _client.IsConnected;

    /// <summary>
    /// Connects, delivers and reconnects until cancelled; cancelling also ends a reconnect wait at once.
    /// A failure that is not a delivery failure (<see cref="AgentFailures.IsExpected"/>: a bug) is thrown.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? lost = null;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                // One execution of the retry per connection: the failure that ended the previous
                // connection is its first failed try (so a dropped connection waits MinBackoff, jittered,
                // before the next connect: no tight loop when a broker accepts and then drops a client),
                // and the back-off grows only while connecting keeps failing, from MinBackoff again after
                // every connection that came up.
                var ended = lost;
                await _reconnect.ExecuteAsync(
                    async ct =>
                    {
                        if (ended is { } e)
                        {
                            ended = null;
                            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
                        }

                        await ConnectAsync(ct).ConfigureAwait(false);
                    },
                    cancellationToken).ConfigureAwait(false);
                try
                {
                    await DeliverWhileConnectedAsync(cancellationToken).ConfigureAwait(false);
                    lost = new MqttCommunicationException("the broker connection ended");
                }
                catch (Exception e) when (IsDeliveryFailure(e, cancellationToken))
                {
                    lost = e;
                }

                _inFlight.Clear();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped, possibly in the middle of a reconnect wait.
        }

        await DisconnectAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// The reconnect retry (Polly, driven by <paramref name="time"/>): unlimited tries, waiting
    /// <see cref="BrokerOptions.MinBackoff"/> doubled each time up to <see cref="BrokerOptions.MaxBackoff"/>,
    /// with jitter unless <see cref="BrokerOptions.ReconnectJitter"/> is off (many devices that lost one
    /// broker must not all come back in the same second). Delivery failures are retried
    /// (<see cref="IsDeliveryFailure"/>); a stop ends the wait at once; anything else (a bug) is thrown.
    /// </summary>
    internal static ResiliencePipeline ReconnectRetry(BrokerOptions options, TimeProvider time, Func<OnRetryArguments<object>, ValueTask> onRetry)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = options.ReconnectJitter,
                Delay = options.MinBackoff,
                MaxDelay = options.MaxBackoff,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && IsDeliveryFailure(e, args.Context.CancellationToken)),
                OnRetry = onRetry,
            })
            .Build();
    }

    /// <summary>What ends a connection without being a bug: the agent's expected failures, or a time-out that is not our stop.</summary>
    private static bool IsDeliveryFailure(Exception e, CancellationToken stop) =>
        e is OperationCanceledException ? !stop.IsCancellationRequested : AgentFailures.IsExpected(e);

    private ValueTask OnReconnectRetryAsync(OnRetryArguments<object> args)
    {
        // The host and the failure only: a broker password or device proof never reaches an exception message.
        _log.LogWarning(args.Outcome.Exception, "MQTT connection to {Host} failed or ended (try {Attempt}); reconnecting in {Delay}", _options.Uri.Host, args.AttemptNumber + 1, args.RetryDelay);
        return ValueTask.CompletedTask;
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        await CloseStaleConnectionAsync().ConfigureAwait(false);
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithClientId(_deviceId)
            .WithTcpServer(_options.Uri.Host, _options.Uri.IsDefaultPort || _options.Uri.Port < 0 ? (_options.UseTls ? 8883 : 1883) : _options.Uri.Port)
            .WithCleanStart(false)
            .WithSessionExpiryInterval((uint)_options.SessionExpiry.TotalSeconds)
            .WithKeepAlivePeriod(_options.KeepAlive)
            .WithTimeout(_options.AckTimeout)
            .WithWillTopic(EvidenceTopics.Status(_deviceId))
            .WithWillPayload(new DeviceStatus(false).Encode())
            .WithWillRetain(true)
            .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithWillContentType("application/json");
        if (_options.DeviceProofKey is { } proofKey)
        {
            builder.WithCredentials(_deviceId, DeviceProof.CreatePassword(_deviceId, proofKey, _time.GetUtcNow()));
        }
        else if (_options.Username is not null)
        {
            var password = _options.PasswordFile is null ? [] : File.ReadAllBytes(_options.PasswordFile).AsSpan().TrimEnd("\r\n"u8).ToArray();
            builder.WithCredentials(_options.Username, password);
        }

        if (_options.UseTls)
        {
            builder.WithTlsOptions(ConfigureTls);
        }

        MqttClientConnectResult result;
        using (var deadline = AckDeadline(cancellationToken))
        {
            result = await AnsweredAsync("CONNECT", _client.ConnectAsync(builder.Build(), deadline.Token), deadline, cancellationToken).ConfigureAwait(false);
        }

        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new MqttCommunicationException($"broker refused the connection: {result.ResultCode} {result.ReasonString}");
        }

        // Subscribing again is harmless when the session was resumed, and needed when it was not.
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(EvidenceTopics.Receipts(_deviceId), MqttQualityOfServiceLevel.AtLeastOnce, noLocal: true, retainAsPublished: false, MqttRetainHandling.SendAtSubscribe)
            .Build();
        using (var deadline = AckDeadline(cancellationToken))
        {
            await AnsweredAsync("SUBSCRIBE", _client.SubscribeAsync(subscribe, deadline.Token), deadline, cancellationToken).ConfigureAwait(false);
        }

        await PublishStatusAsync(cancellationToken).ConfigureAwait(false);

        // Counted once the connection is fully set up (subscribed, status published): what fails before is a failed try.
        Connections++;
        _log.LogInformation("MQTT connected to {Host} as {Device} (session {Session})", _options.Uri.Host, _deviceId, result.IsSessionPresent ? "resumed" : "new");
    }

    private void ConfigureTls(MqttClientTlsOptionsBuilder tls)
    {
        tls.UseTls(true).WithTargetHost(_options.Uri.Host);
        if (_options.ClientCertFile is not null)
        {
            var certificate = _options.ClientKeyFile is null
                ? X509Certificate2.CreateFromPemFile(_options.ClientCertFile)
                : X509Certificate2.CreateFromPemFile(_options.ClientCertFile, _options.ClientKeyFile);
            tls.WithClientCertificates([certificate]);
        }

        if (_options.CaFile is not null)
        {
            var pinned = new X509Certificate2Collection();
            pinned.ImportFromPemFile(_options.CaFile);
            tls.WithCertificateValidationHandler(context => ValidatePinned(context.Certificate, context.SslPolicyErrors, pinned));
        }
    }

    /// <summary>
    /// Accepts the broker only if its certificate names the host and chains to one of the pinned CAs
    /// (custom root trust: the system store is not consulted).
    /// </summary>
    internal static bool ValidatePinned(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection pinned)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        using var leaf = new X509Certificate2(certificate);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(pinned);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }

    private async Task DeliverWhileConnectedAsync(CancellationToken cancellationToken)
    {
        var lastStatus = _time.GetUtcNow();
        var publishing = new List<(long Sequence, Task<MqttClientPublishResult> PubAck)>(_options.MaxInFlight);
        while (_client.IsConnected && !cancellationToken.IsCancellationRequested)
        {
            var now = _time.GetUtcNow();
            publishing.Clear();
            using var pubAcks = AckDeadline(cancellationToken);
            foreach (var entry in _outbox.Snapshot())
            {
                if (_inFlight.TryGetValue(entry.Hash, out var sentAt) && now - sentAt < _options.ResendAfter)
                {
                    continue;
                }

                if (_inFlight.Count >= _options.MaxInFlight && !_inFlight.ContainsKey(entry.Hash))
                {
                    break;
                }

                var cose = _outbox.Read(entry);
                if (cose is null)
                {
                    continue;
                }

                var message = new MqttApplicationMessageBuilder()
                    .WithTopic(EvidenceTopics.Evidence(_deviceId))
                    .WithPayload(cose)
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                    .WithContentType(EvidenceFormat.CoseMediaType)
                    .WithUserProperty("seq", System.Text.Encoding.ASCII.GetBytes(entry.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture)).AsMemory())
                    .WithUserProperty(EvidenceReceipt.ListProperty, EvidenceReceipt.ListValueUtf8)
                    .Build();
                // Sent without waiting for the PUBACK of the one before (MQTTnet numbers and matches them):
                // over a link with a round trip of r, one record at a time would hold the agent to 1/r records/s.
                _inFlight[entry.Hash] = now;
                publishing.Add((entry.Sequence, _client.PublishAsync(message, pubAcks.Token)));
            }

            await AnsweredAsync("evidence PUBLISHes", AwaitPublishesAsync(publishing), pubAcks, cancellationToken).ConfigureAwait(false);

            if (now - lastStatus > TimeSpan.FromMinutes(1))
            {
                await PublishStatusAsync(cancellationToken).ConfigureAwait(false);
                lastStatus = now;
            }

            // Wake on a new record or a receipt; otherwise re-check for resends.
            using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var newRecord = _outbox.WaitForRecordsAsync(TimeSpan.FromMilliseconds(500), wake.Token);
            var receipt = _receiptArrived.WaitAsync(TimeSpan.FromMilliseconds(500), wake.Token);
            await Task.WhenAny(newRecord, receipt).ConfigureAwait(false);
            await wake.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(Quiet(newRecord), Quiet(receipt)).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for every PUBACK of one pass (all of them, so none is left unobserved), counts them, and throws the first failure.</summary>
    private async Task AwaitPublishesAsync(List<(long Sequence, Task<MqttClientPublishResult> PubAck)> publishing)
    {
        try
        {
            await Task.WhenAll(publishing.Select(p => p.PubAck)).ConfigureAwait(false);
        }
        finally
        {
            foreach (var (sequence, pubAck) in publishing)
            {
                if (!pubAck.IsCompletedSuccessfully)
                {
                    continue;
                }

                var result = pubAck.Result;
                if (result.IsSuccess)
                {
                    Published++;
                }
                else
                {
                    _log.LogWarning("MQTT broker refused record {Sequence}: {ReasonCode} {Reason}", sequence, result.ReasonCode, result.ReasonString);
                }
            }
        }
    }

    private static async Task Quiet(Task task)
    {
        try
        {
            await task.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The other wake-up source fired first.
        }
    }

    private async Task PublishStatusAsync(CancellationToken cancellationToken)
    {
        using var deadline = AckDeadline(cancellationToken);
        var status = _status?.Invoke() ?? new DeviceStatus(true, null, _outbox.Count, _outbox.DroppedWhenFull);
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(EvidenceTopics.Status(_deviceId))
            .WithPayload(status.Encode())
            .WithRetainFlag(true)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithContentType("application/json")
            .Build();
        await AnsweredAsync("the status PUBLISH", _client.PublishAsync(message, deadline.Token), deadline, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// A token that the stop cancels, or <see cref="BrokerOptions.AckTimeout"/> passing. MQTTnet applies its
    /// own time-out only to calls made with a token that cannot be cancelled, so without this a broker that
    /// accepts the TCP connection and then never answers (a CONNACK, SUBACK or PUBACK) would hold the agent forever.
    /// </summary>
    private CancellationTokenSource AckDeadline(CancellationToken stop)
    {
        var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(_options.AckTimeout);
        return deadline;
    }

    /// <summary>
    /// Awaits a broker's answer made under <paramref name="deadline"/> (an <see cref="AckDeadline"/>). Whatever
    /// the call failed with once the deadline passed (not the stop) is a <see cref="TimeoutException"/> naming
    /// the request: MQTTnet reports a cancelled CONNECT as a closed connection, not as a cancellation.
    /// </summary>
    private async Task AnsweredAsync(string request, Task answer, CancellationTokenSource deadline, CancellationToken stop)
    {
        try
        {
            await answer.ConfigureAwait(false);
        }
        catch (Exception e) when (deadline.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"the MQTT broker did not answer {request} within {_options.AckTimeout.TotalSeconds:0.###} s"), e);
        }
    }

    private async Task<T> AnsweredAsync<T>(string request, Task<T> answer, CancellationTokenSource deadline, CancellationToken stop)
    {
        await AnsweredAsync(request, (Task)answer, deadline, stop).ConfigureAwait(false);
        return await answer.ConfigureAwait(false);
    }

    /// <summary>
    /// Closes a connection that failed while MQTTnet still counts it open (an answer that did not come in
    /// time): MQTTnet refuses to connect a client it counts as connected, so every reconnect would fail for
    /// as long as that connection lived. A plain DISCONNECT: the agent comes back at once, so no last will.
    /// </summary>
    private async Task CloseStaleConnectionAsync()
    {
        if (!_client.IsConnected)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(_options.AckTimeout);
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException || AgentFailures.IsExpected(e))
        {
            // MQTTnet closes the socket whether or not the DISCONNECT went out.
            _log.LogWarning(e, "Closing the stale MQTT connection to {Host} did not end cleanly", _options.Uri.Host);
        }
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        var message = args.ApplicationMessage;
        if (message.Topic != EvidenceTopics.Receipts(_deviceId))
        {
            return Task.CompletedTask;
        }

        // One receipt, or a list of them (the agent asks for lists on every PUBLISH, EvidenceReceipt.ListProperty).
        var payload = message.Payload.Length > EvidenceReceipt.MaxEncodedListBytes ? [] : message.Payload.ToArray();
        if (!EvidenceReceipt.TryDecodeList(payload, out var receipts) || receipts[0].DeviceId != _deviceId)
        {
            _log.LogWarning("Ignored a malformed receipt on {Topic} ({Bytes} bytes)", message.Topic, message.Payload.Length);
            return Task.CompletedTask;
        }

        foreach (var receipt in receipts)
        {
            _inFlight.TryRemove(receipt.Hash, out _);
            var known = receipt.ReleasesRecord ? _outbox.Release(receipt.Hash) : _outbox.Reject(receipt.Hash);
            if (known)
            {
                ReceiptsMatched++;
                if (receipt.Status == ReceiptStatus.Rejected)
                {
                    _log.LogWarning("The service rejected record {Sequence}: {Reason}; moved to outbox/rejected", receipt.Sequence, receipt.Reason);
                }
            }
        }

        _receiptArrived.Release();
        return Task.CompletedTask;
    }

    private async Task DisconnectAsync()
    {
        if (!_client.IsConnected)
        {
            return;
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var offline = new MqttApplicationMessageBuilder()
                .WithTopic(EvidenceTopics.Status(_deviceId))
                .WithPayload(new DeviceStatus(false).Encode())
                .WithRetainFlag(true)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build();
            await _client.PublishAsync(offline, timeout.Token).ConfigureAwait(false);
            await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException || AgentFailures.IsExpected(e))
        {
            _log.LogWarning(e, "MQTT clean disconnect from {Host} failed; the broker publishes the last will instead", _options.Uri.Host);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await DisconnectAsync().ConfigureAwait(false);
        _client.Dispose();
        _receiptArrived.Dispose();
    }

    /// <summary>Drops the connection without a DISCONNECT packet, as a power cut would (tests).</summary>
    internal void Kill()
    {
        _client.Dispose();
    }
}
