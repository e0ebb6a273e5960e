using MQTTnet;
using MQTTnet.Protocol;
using ShareVault.Evidence;

namespace ShareVault.Benchmarks;

/// <summary>
/// A benchmark device publishing its records the way the agent's MQTT delivery does: QoS 1, in order on
/// one connection, with up to <see cref="AgentWindow"/> publishes not yet acknowledged (the agent's
/// default <c>maxInFlight</c>). Awaiting each PUBACK before the next publish would hold every device to
/// one record per round trip, which no agent does, and would measure that wait instead of the ingest.
/// </summary>
internal static class DevicePublisher
{
    public const int AgentWindow = 32;

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
