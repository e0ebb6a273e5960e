using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using ShareVault.Evidence;

namespace DeviceAgent.Tests.Support;

/// <summary>
/// A real MQTT 5 broker (MQTTnet.Server) on a free loopback port, with a receipt responder that
/// plays the claims service: it verifies each evidence record, stores it once per (device, seq),
/// and publishes a stored/duplicate/rejected receipt to the device's receipts topic.
/// </summary>
internal sealed class EmbeddedBroker : IAsyncDisposable
{
    private readonly Func<string, ECDsa?> _keys;
    private readonly System.Security.Cryptography.X509Certificates.X509Certificate2? _tlsCertificate;
    private MqttServer? _server;

    /// <summary>A broker; with <paramref name="tlsCertificate"/> it listens only on a TLS endpoint.</summary>
    public EmbeddedBroker(Func<string, ECDsa?> keys, System.Security.Cryptography.X509Certificates.X509Certificate2? tlsCertificate = null)
    {
        _keys = keys;
        _tlsCertificate = tlsCertificate;
        // Reserved (and below the ephemeral range): the broker is stopped and restarted on it by some tests.
        Port = ShareVault.Hardware.LoopbackPorts.Reserve();
    }

    public int Port { get; }

    public Uri Uri => new($"{(_tlsCertificate is null ? "mqtt" : "mqtts")}://127.0.0.1:{Port}");

    /// <summary>When false the "service" is down: the broker still acknowledges publishes, but no receipt comes.</summary>
    public bool Responding { get; set; } = true;

    /// <summary>Stored records by sequence number (the service's dedupe key).</summary>
    public ConcurrentDictionary<long, byte[]> Stored { get; } = new();

    /// <summary>Every evidence publish the broker accepted, including redeliveries.</summary>
    public ConcurrentQueue<long> Arrivals { get; } = new();

    public int Duplicates => _duplicates;

    public ConcurrentBag<EvidenceRejection> Rejections { get; } = [];

    /// <summary>Sequence numbers the service will reject (to test the rejected path).</summary>
    public HashSet<long> RejectSequences { get; } = [];

    public ConcurrentDictionary<string, byte[]> Retained { get; } = new(StringComparer.Ordinal);

    private int _duplicates;

    public bool IsRunning => _server?.IsStarted == true;

    public async Task StartAsync()
    {
        var builder = new MqttServerOptionsBuilder().WithPersistentSessions(true);
        if (_tlsCertificate is null)
        {
            builder.WithDefaultEndpoint().WithDefaultEndpointBoundIPAddress(IPAddress.Loopback).WithDefaultEndpointPort(Port).WithDefaultEndpointReuseAddress();
        }
        else
        {
            builder.WithoutDefaultEndpoint().WithEncryptedEndpoint().WithEncryptedEndpointBoundIPAddress(IPAddress.Loopback)
                .WithEncryptedEndpointPort(Port).WithEncryptionCertificate(_tlsCertificate).WithTlsEndpointReuseAddress();
        }

        var options = builder.Build();
        _server = new MqttServerFactory().CreateMqttServer(options);
        _server.InterceptingPublishAsync += OnPublishAsync;
        await _server.StartAsync();
    }

    public async Task StopAsync()
    {
        if (_server is { } server)
        {
            _server = null;
            await server.StopAsync(new MqttServerStopOptionsBuilder().Build());
            server.Dispose();
        }
    }

    private Task OnPublishAsync(InterceptingPublishEventArgs args)
    {
        var message = args.ApplicationMessage;
        if (message.Retain && message.Topic.EndsWith("/status", StringComparison.Ordinal))
        {
            Retained[message.Topic] = message.Payload.ToArray();
        }

        if (!EvidenceTopics.TryParse(message.Topic, out var deviceId, out var kind) || kind != EvidenceTopicKind.Evidence)
        {
            return Task.CompletedTask;
        }

        var cose = message.Payload.ToArray();
        var asksForList = message.UserProperties?.Any(p => EvidenceReceipt.AsksForList(p.Name, p.ValueBuffer.Span)) == true;
        var verification = EvidenceVerifier.Verify(cose, _keys);
        if (verification.Record is { } seen)
        {
            Arrivals.Enqueue(seen.Sequence);
        }

        if (!Responding)
        {
            return Task.CompletedTask;
        }

        EvidenceReceipt receipt;
        if (!verification.IsValid)
        {
            Rejections.Add(verification.Reason);
            receipt = EvidenceReceipt.For(deviceId, null, cose, ReceiptStatus.Rejected, verification.Reason.ToString());
        }
        else if (RejectSequences.Contains(verification.Record!.Sequence))
        {
            receipt = EvidenceReceipt.For(deviceId, verification.Record.Sequence, cose, ReceiptStatus.Rejected, "TestPolicy");
        }
        else if (Stored.TryAdd(verification.Record.Sequence, cose))
        {
            receipt = EvidenceReceipt.For(deviceId, verification.Record.Sequence, cose, ReceiptStatus.Stored);
        }
        else
        {
            Interlocked.Increment(ref _duplicates);
            receipt = EvidenceReceipt.For(deviceId, verification.Record.Sequence, cose, ReceiptStatus.Duplicate);
        }

        var server = _server;
        if (server is null)
        {
            return Task.CompletedTask;
        }

        // Publish the receipt after this interception returns (the broker is still handling the publish).
        _ = Task.Run(async () =>
        {
            var reply = new MqttApplicationMessageBuilder()
                .WithTopic(EvidenceTopics.Receipts(deviceId))
                .WithPayload(asksForList ? EvidenceReceipt.EncodeList([receipt]) : receipt.Encode())
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build();
            try
            {
                await server.InjectApplicationMessage(new InjectedMqttApplicationMessage(reply) { SenderClientId = "claims-service" }, CancellationToken.None);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                // Broker stopped meanwhile: the device resends and gets a duplicate receipt later.
            }
        });
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
