using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using DeviceAgent.Storage;
using MQTTnet;
using MQTTnet.Exceptions;
using MQTTnet.Protocol;
using ShareVault.Evidence;

namespace DeviceAgent.Delivery;

/// <summary>
/// Delivers the outbox over MQTT 5 (MQTTnet): QoS 1 publishes to the device's evidence topic, a
/// persistent session (clean start false, session expiry &gt; 0) so receipts queued while the device
/// is away still arrive, a retained status with a matching last will, TLS with a pinned CA, and
/// reconnects with exponential back-off and jitter. A PUBACK only means the broker took the
/// message (MQTT 5 §4.3.2); records leave the outbox when the service's receipt arrives.
/// </summary>
public sealed class MqttDelivery : IAsyncDisposable
{
    private readonly string _deviceId;
    private readonly BrokerOptions _options;
    private readonly Outbox _outbox;
    private readonly TimeProvider _time;
    private readonly TextWriter _log;
    private readonly Func<DeviceStatus>? _status;
    private readonly IMqttClient _client;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _inFlight = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _receiptArrived = new(0, int.MaxValue);

    public MqttDelivery(string deviceId, BrokerOptions options, Outbox outbox, TimeProvider time, TextWriter? log = null, Func<DeviceStatus>? status = null)
    {
        ArgumentNullException.ThrowIfNull(options);
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
        _log = log ?? TextWriter.Null;
        _status = status;
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += OnMessageAsync;
    }

    /// <summary>Successful connections so far.</summary>
    public int Connections { get; private set; }

    /// <summary>Publishes the broker acknowledged (including resends).</summary>
    public long Published { get; private set; }

    /// <summary>Receipts that matched a record in the outbox.</summary>
    public long ReceiptsMatched { get; private set; }

    public bool IsConnected => _client.IsConnected;

    /// <summary>Connects, delivers and reconnects until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var attempt = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await ConnectAsync(cancellationToken).ConfigureAwait(false);
                attempt = 0;
                await DeliverWhileConnectedAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e) when (e is MqttCommunicationException or IOException or OperationCanceledException
                                          or InvalidOperationException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException)
            {
                _log.WriteLine($"mqtt: {e.GetType().Name}: {e.Message}");
            }

            _inFlight.Clear();
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }

            var delay = Backoff(attempt++);
            _log.WriteLine($"mqtt: reconnecting in {delay.TotalSeconds:F1} s");
            try
            {
                await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }

        await DisconnectAsync().ConfigureAwait(false);
    }

    /// <summary>Exponential back-off with "equal jitter": half the capped delay plus a random half.</summary>
    internal TimeSpan Backoff(int attempt)
    {
        var capped = Math.Min(_options.MaxBackoff.TotalMilliseconds, _options.MinBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30)));
        return TimeSpan.FromMilliseconds((capped / 2) + (Random.Shared.NextDouble() * capped / 2));
    }

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        var builder = new MqttClientOptionsBuilder()
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithClientId(_deviceId)
            .WithTcpServer(_options.Uri.Host, _options.Uri.IsDefaultPort || _options.Uri.Port < 0 ? (_options.UseTls ? 8883 : 1883) : _options.Uri.Port)
            .WithCleanStart(false)
            .WithSessionExpiryInterval((uint)_options.SessionExpiry.TotalSeconds)
            .WithKeepAlivePeriod(_options.KeepAlive)
            .WithTimeout(TimeSpan.FromSeconds(15))
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

        var result = await _client.ConnectAsync(builder.Build(), cancellationToken).ConfigureAwait(false);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new MqttCommunicationException($"broker refused the connection: {result.ResultCode} {result.ReasonString}");
        }

        Connections++;
        _log.WriteLine($"mqtt: connected to {_options.Uri.Host} (session {(result.IsSessionPresent ? "resumed" : "new")})");

        // Subscribing again is harmless when the session was resumed, and needed when it was not.
        var subscribe = new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(EvidenceTopics.Receipts(_deviceId), MqttQualityOfServiceLevel.AtLeastOnce, noLocal: true, retainAsPublished: false, MqttRetainHandling.SendAtSubscribe)
            .Build();
        await _client.SubscribeAsync(subscribe, cancellationToken).ConfigureAwait(false);
        await PublishStatusAsync(cancellationToken).ConfigureAwait(false);
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
        while (_client.IsConnected && !cancellationToken.IsCancellationRequested)
        {
            var now = _time.GetUtcNow();
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
                    .Build();
                _inFlight[entry.Hash] = now;
                var result = await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
                if (result.IsSuccess)
                {
                    Published++;
                }
                else
                {
                    _log.WriteLine($"mqtt: broker refused record {entry.Sequence}: {result.ReasonCode} {result.ReasonString}");
                }
            }

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
        var status = _status?.Invoke() ?? new DeviceStatus(true, null, _outbox.Count, _outbox.DroppedWhenFull);
        var message = new MqttApplicationMessageBuilder()
            .WithTopic(EvidenceTopics.Status(_deviceId))
            .WithPayload(status.Encode())
            .WithRetainFlag(true)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithContentType("application/json")
            .Build();
        await _client.PublishAsync(message, cancellationToken).ConfigureAwait(false);
    }

    private Task OnMessageAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        var message = args.ApplicationMessage;
        if (message.Topic != EvidenceTopics.Receipts(_deviceId))
        {
            return Task.CompletedTask;
        }

        var payload = message.Payload.Length > EvidenceReceipt.MaxEncodedBytes ? [] : message.Payload.ToArray();
        if (!EvidenceReceipt.TryDecode(payload, out var receipt) || receipt!.DeviceId != _deviceId)
        {
            _log.WriteLine("mqtt: ignored a malformed receipt");
            return Task.CompletedTask;
        }

        _inFlight.TryRemove(receipt.Hash, out _);
        var known = receipt.ReleasesRecord ? _outbox.Release(receipt.Hash) : _outbox.Reject(receipt.Hash);
        if (known)
        {
            ReceiptsMatched++;
            if (receipt.Status == ReceiptStatus.Rejected)
            {
                _log.WriteLine($"mqtt: service rejected record {receipt.Sequence}: {receipt.Reason}; moved to outbox/rejected");
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
        catch (Exception e) when (e is MqttCommunicationException or OperationCanceledException or IOException or InvalidOperationException)
        {
            _log.WriteLine($"mqtt: clean disconnect failed: {e.Message}");
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
