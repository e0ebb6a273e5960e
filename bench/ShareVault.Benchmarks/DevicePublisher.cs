using System.Collections.Concurrent;
using System.Security.Cryptography;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Evidence;

namespace ShareVault.Benchmarks;

/// <summary>
/// A benchmark device that connects, publishes and takes its receipts the way the agent's MQTT
/// delivery (<c>DeviceAgent.Core/Delivery/MqttDelivery.cs</c>) does: MQTT 5, QoS 1, records in
/// sequence order on one connection, PUBLISHes not waiting for each other's PUBACK but at most
/// <see cref="AgentWindow"/> records sent and not yet receipted (the agent's default
/// <c>maxInFlight</c>), and receipt lists asked for (<see cref="EvidenceReceipt.ListProperty"/>).
/// Every receipt is decoded as it arrives and queued for the round's zero-loss check.
/// </summary>
internal sealed class DevicePublisher : IAsyncDisposable
{
    public const int AgentWindow = 32;

    private readonly IMqttClient _client;
    private readonly string _deviceId;
    private readonly ConcurrentQueue<EvidenceReceipt> _receipts;
    private readonly ConcurrentDictionary<string, byte> _unreceipted = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _window = new(AgentWindow, AgentWindow);

    private DevicePublisher(IMqttClient client, string deviceId, ConcurrentQueue<EvidenceReceipt> receipts)
    {
        (_client, _deviceId, _receipts) = (client, deviceId, receipts);
        _client.ApplicationMessageReceivedAsync += OnReceiptsAsync;
    }

    /// <summary>
    /// Connects a device as the agent does (MQTT 5, username = device id, password = a device proof
    /// signed with <paramref name="proofKey"/>; none for a broker that authenticates otherwise) and
    /// subscribes to its receipts, each of which is queued in <paramref name="receipts"/>.
    /// </summary>
    public static async Task<DevicePublisher> ConnectAsync(string deviceId, int port, ConcurrentQueue<EvidenceReceipt> receipts, ECDsa? proofKey)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var device = new DevicePublisher(client, deviceId, receipts);
        var builder = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(deviceId).WithCleanStart(true).WithSessionExpiryInterval(3600).WithTimeout(TimeSpan.FromSeconds(60));
        if (proofKey is not null)
        {
            builder.WithCredentials(deviceId, DeviceProof.CreatePassword(deviceId, proofKey, DateTimeOffset.UtcNow));
        }

        var result = await client.ConnectAsync(builder.Build());
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            client.Dispose();
            throw new InvalidOperationException($"{deviceId}: CONNACK {result.ResultCode}");
        }

        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(EvidenceTopics.Receipts(deviceId)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build());
        return device;
    }

    /// <summary>Connects every device (16 at a time), as <see cref="ConnectAsync"/> does; with <paramref name="withProof"/> each logs in with its device proof.</summary>
    public static async Task<List<DevicePublisher>> ConnectAllAsync(
        IEnumerable<(string Id, ECDsa Key)> devices, int port, ConcurrentQueue<EvidenceReceipt> receipts, bool withProof)
    {
        using var connecting = new SemaphoreSlim(16);
        return [.. await Task.WhenAll(devices.Select(async device =>
        {
            await connecting.WaitAsync();
            try
            {
                return await ConnectAsync(device.Id, port, receipts, withProof ? device.Key : null);
            }
            finally
            {
                connecting.Release();
            }
        }))];
    }

    /// <summary>
    /// The zero-loss verdict of a round: every record stored once (<paramref name="rows"/> and
    /// <paramref name="distinct"/> hashes in the database) and receipted <c>stored</c>.
    /// </summary>
    public static (bool Lossless, string Verdict) ZeroLoss(long rows, long distinct, IEnumerable<EvidenceReceipt> receipts, int expected)
    {
        var stored = receipts.Where(r => r.Status == ReceiptStatus.Stored).Select(r => r.Hash).Distinct(StringComparer.Ordinal).Count();
        var lossless = rows == expected && distinct == expected && stored == expected;
        return (lossless, lossless ? $"ok ({expected} stored, {expected} receipted)" : $"LOSS: {rows} rows ({distinct} distinct) of {expected}, {stored} 'stored' receipts");
    }

    /// <summary>Publishes <paramref name="records"/> in order, as the agent would, and returns when the last one is acknowledged by the broker.</summary>
    public async Task PublishAsync(IEnumerable<byte[]> records)
    {
        var acknowledged = new List<Task<MqttClientPublishResult>>();
        foreach (var cose in records)
        {
            await _window.WaitAsync();
            _unreceipted[Convert.ToHexStringLower(SHA256.HashData(cose))] = 0;
            acknowledged.Add(_client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(EvidenceTopics.Evidence(_deviceId)).WithPayload(cose)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType(EvidenceFormat.CoseMediaType)
                .WithUserProperty(EvidenceReceipt.ListProperty, EvidenceReceipt.ListValueUtf8).Build()));
        }

        foreach (var result in await Task.WhenAll(acknowledged))
        {
            if (result.ReasonCode != MqttClientPublishReasonCode.Success)
            {
                throw new InvalidOperationException($"{_deviceId}: PUBACK {result.ReasonCode}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_client.IsConnected)
        {
            await _client.DisconnectAsync();
        }

        _client.Dispose();
        _window.Dispose();
    }

    private Task OnReceiptsAsync(MqttApplicationMessageReceivedEventArgs args)
    {
        // Anything else goes uncounted, and the round's check reports the receipts missing.
        if (!EvidenceReceipt.TryDecodeList(System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload), out var receipts) || receipts[0].DeviceId != _deviceId)
        {
            return Task.CompletedTask;
        }

        foreach (var receipt in receipts)
        {
            _receipts.Enqueue(receipt);
            if (_unreceipted.TryRemove(receipt.Hash, out _))
            {
                _window.Release();
            }
        }

        return Task.CompletedTask;
    }
}
