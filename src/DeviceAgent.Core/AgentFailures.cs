using System.Security.Authentication;
using System.Security.Cryptography;
using MQTTnet.Exceptions;
using ShareVault.Hardware;

namespace DeviceAgent;

/// <summary>
/// The agent's one failure classification, used at each of its boundaries (the <c>device-agent</c>
/// command, a sensor event, MQTT delivery and reconnects): an expected failure comes from the
/// world the agent runs in and gets a one-line reason (a command exits non-zero, delivery
/// reconnects, a sensor event is left to the next poll); anything else is a bug, logged with its
/// exception and stack, never swallowed.
/// </summary>
public static class AgentFailures
{
    /// <summary>
    /// Expected: the key's hardware (<see cref="ShareStoreException"/>, with its native code), files and
    /// permissions, configuration and input (argument, format, JSON, data), crypto, the network and the
    /// broker (sockets, TLS, MQTT, time-outs), a state the agent refuses to continue from
    /// (<see cref="InvalidOperationException"/>, which the outbox and sequence state throw with a reason),
    /// and a driver or platform without a feature (<see cref="NotSupportedException"/>).
    /// </summary>
    public static bool IsExpected(Exception exception) => exception is ShareStoreException
        or IOException or UnauthorizedAccessException
        or ArgumentException or FormatException or InvalidDataException or System.Text.Json.JsonException
        or CryptographicException
        or System.Net.Sockets.SocketException or AuthenticationException or MqttCommunicationException or TimeoutException
        or InvalidOperationException or NotSupportedException;
}
