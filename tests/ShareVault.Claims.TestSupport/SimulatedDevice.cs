using System.Collections.Concurrent;
using System.Security.Cryptography;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Service;

namespace ShareVault.Claims.TestSupport;

/// <summary>
/// A device for ingest tests: a software P-256 key, a chain of signed evidence records made with the
/// evidence contract, and an MQTTnet 5 client that publishes them (QoS 1) and collects receipts.
/// </summary>
public sealed class SimulatedDevice : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, EvidenceReceipt> _receipts = new(StringComparer.Ordinal);
    private byte[] _previous = [];
    private long _next;
    private IMqttClient? _client;
    private int _receiptMessages;

    public SimulatedDevice(string id, long firstSequence = 0)
    {
        Id = id;
        _next = firstSequence;
    }

    public string Id { get; }

    public ECDsa Key { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public byte[] PublicKey => Key.ExportSubjectPublicKeyInfo();

    public IReadOnlyDictionary<string, EvidenceReceipt> Receipts => _receipts;

    /// <summary>Publishes with <see cref="EvidenceReceipt.ListProperty"/>, as the agent does, so the service may answer with receipt lists.</summary>
    public bool AsksForReceiptLists { get; init; }

    /// <summary>Receipt messages received (a list counts once).</summary>
    public int ReceiptMessages => _receiptMessages;

    /// <summary>Signs the next record of the chain.</summary>
    public byte[] Next(DateTimeOffset time, params Reading[] readings)
    {
        var record = new EvidenceRecord(Id, _next++, time, _previous, readings);
        var cose = EvidenceSigner.Sign(record, Key);
        _previous = EvidenceRecord.Hash(cose);
        return cose;
    }

    /// <summary>Dry for two minutes, then wet for <paramref name="wetMinutes"/> minutes: one record a minute.</summary>
    public List<byte[]> Leak(DateTimeOffset start, int wetMinutes) =>
        [.. Enumerable.Range(0, wetMinutes + 3).Select(i => Next(start.AddMinutes(i), new Reading("water_leak", null, i is >= 2 && i < wetMinutes + 2 ? 1 : 0, start.AddMinutes(i)),
            new Reading("temperature", "Cel", 19.5, start.AddMinutes(i))))];

    public List<byte[]> Quiet(DateTimeOffset start, int minutes) =>
        [.. Enumerable.Range(0, minutes).Select(i => Next(start.AddMinutes(i), new Reading("water_leak", null, 0, start.AddMinutes(i))))];

    public async Task<MqttClientConnectResult> ConnectAsync(int port, CancellationToken cancellationToken, Action<MqttClientOptionsBuilder>? configure = null, string? password = null)
    {
        _client = new MqttClientFactory().CreateMqttClient();
        _client.ApplicationMessageReceivedAsync += args =>
        {
            if (TryDecodeReceipts(System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload), out var receipts))
            {
                Interlocked.Increment(ref _receiptMessages);
                foreach (var receipt in receipts)
                {
                    _receipts[receipt.Hash] = receipt;
                }
            }

            return Task.CompletedTask;
        };
        var builder = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(Id).WithCleanStart(false).WithSessionExpiryInterval(3600)
            .WithCredentials(Id, password ?? DeviceProof.CreatePassword(Id, Key, DateTimeOffset.UtcNow))
            .WithTimeout(TimeSpan.FromSeconds(10));
        configure?.Invoke(builder);
        var result = await _client.ConnectAsync(builder.Build(), cancellationToken);
        return result;
    }

    public async Task<MqttClientSubscribeResultCode> SubscribeReceiptsAsync(CancellationToken cancellationToken, string? deviceId = null)
    {
        var result = await _client!.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(EvidenceTopics.Receipts(deviceId ?? Id)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build(), cancellationToken);
        return result.Items.First().ResultCode;
    }

    public async Task<MqttClientPublishReasonCode> PublishAsync(byte[] cose, CancellationToken cancellationToken, string? topic = null)
    {
        var message = new MqttApplicationMessageBuilder().WithTopic(topic ?? EvidenceTopics.Evidence(Id)).WithPayload(cose)
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType(EvidenceFormat.CoseMediaType);
        if (AsksForReceiptLists)
        {
            message.WithUserProperty(EvidenceReceipt.ListProperty, EvidenceReceipt.ListValueUtf8);
        }

        var result = await _client!.PublishAsync(message.Build(), cancellationToken);
        return result.ReasonCode;
    }

    /// <summary>A device that does not ask for lists takes single receipts only, like an agent that predates them.</summary>
    private bool TryDecodeReceipts(byte[] payload, out IReadOnlyList<EvidenceReceipt> receipts)
    {
        if (AsksForReceiptLists)
        {
            return EvidenceReceipt.TryDecodeList(payload, out receipts);
        }

        receipts = EvidenceReceipt.TryDecode(payload, out var single) ? [single!] : [];
        return receipts.Count == 1;
    }

    /// <summary>Waits until every record has a receipt; returns them in order.</summary>
    public async Task<List<EvidenceReceipt>> WaitForReceiptsAsync(IEnumerable<byte[]> records, TimeSpan timeout)
    {
        var hashes = records.Select(r => Convert.ToHexStringLower(EvidenceRecord.Hash(r))).ToList();
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (hashes.All(_receipts.ContainsKey))
            {
                return [.. hashes.Select(h => _receipts[h])];
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"{hashes.Count(h => !_receipts.ContainsKey(h))} of {hashes.Count} receipts missing for {Id}");
    }

    public async Task DisconnectAsync()
    {
        if (_client is { IsConnected: true })
        {
            await _client.DisconnectAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await DisconnectAsync();
        }
        catch (MQTTnet.Exceptions.MqttCommunicationException)
        {
            // Disposed after the broker stopped (a test's service disposed first): the client may still
            // report IsConnected until it notices, and the DISCONNECT then meets a broken pipe.
        }

        _client?.Dispose();
        Key.Dispose();
    }

    /// <summary>A loopback port for a server, reserved for this process and outside the ephemeral range (<see cref="LoopbackPorts"/>).</summary>
    public static int FreePort() => LoopbackPorts.Reserve();
}
