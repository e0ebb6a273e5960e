using System.Collections.Concurrent;
using System.Security.Cryptography;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Evidence;

namespace ShareVault.Benchmarks;

/// <summary>
/// A benchmark device connecting and publishing its records the way the agent's MQTT delivery does: QoS 1, in order on
/// one connection, with up to <see cref="AgentWindow"/> publishes not yet acknowledged (the agent's
/// default <c>maxInFlight</c>). Awaiting each PUBACK before the next publish would hold every device to
/// one record per round trip, which no agent does, and would measure that wait instead of the ingest.
/// </summary>
internal static class DevicePublisher
{
    public const int AgentWindow = 32;

    /// <summary>
    /// Connects a device as the agent does (MQTT 5, username = device id, password = a device proof
    /// signed with <paramref name="proofKey"/>; none for a broker that authenticates otherwise) and
    /// subscribes to its receipts, each of which is queued in <paramref name="receipts"/>.
    /// </summary>
    public static async Task<IMqttClient> ConnectAsync(string deviceId, int port, ConcurrentQueue<byte[]> receipts, ECDsa? proofKey)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += args =>
        {
            receipts.Enqueue(System.Buffers.BuffersExtensions.ToArray(args.ApplicationMessage.Payload));
            return Task.CompletedTask;
        };
        var builder = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(deviceId).WithCleanStart(true).WithSessionExpiryInterval(3600).WithTimeout(TimeSpan.FromSeconds(60));
        if (proofKey is not null)
        {
            builder.WithCredentials(deviceId, DeviceProof.CreatePassword(deviceId, proofKey, DateTimeOffset.UtcNow));
        }

        var result = await client.ConnectAsync(builder.Build());
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"{deviceId}: CONNACK {result.ResultCode}");
        }

        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter(f => f.WithTopic(EvidenceTopics.Receipts(deviceId)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)).Build());
        return client;
    }

    public static async Task PublishAsync(IMqttClient client, string deviceId, IEnumerable<byte[]> records, int window = AgentWindow)
    {
        var pending = new Queue<Task<MqttClientPublishResult>>();
        foreach (var cose in records)
        {
            if (pending.Count >= window)
            {
                Check(await pending.Dequeue(), deviceId);
            }

            pending.Enqueue(client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(EvidenceTopics.Evidence(deviceId)).WithPayload(cose)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithContentType(EvidenceFormat.CoseMediaType).Build()));
        }

        while (pending.Count > 0)
        {
            Check(await pending.Dequeue(), deviceId);
        }
    }

    private static void Check(MqttClientPublishResult result, string deviceId)
    {
        if (result.ReasonCode != MqttClientPublishReasonCode.Success)
        {
            throw new InvalidOperationException($"{deviceId}: PUBACK {result.ReasonCode}");
        }
    }
}
