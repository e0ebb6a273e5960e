using MQTTnet.Exceptions;
using ShareVault.Hardware;

namespace DeviceAgent.Tests;

/// <summary>The agent's one failure classification: the world's failures are expected, bugs are not.</summary>
public sealed class AgentFailuresTests
{
    [Theory]
    [InlineData("hardware")]
    [InlineData("disk full")]
    [InlineData("config")]
    [InlineData("broker")]
    [InlineData("socket")]
    [InlineData("tls")]
    [InlineData("outbox state")]
    public void The_worlds_failures_are_expected(string kind)
    {
        Exception failure = kind switch
        {
            "hardware" => new ShareStoreException(ShareStoreError.DeviceUnreachable, "token removed"),
            "disk full" => new IOException("No space left on device"),
            "config" => new FormatException("pollSeconds must be > 0"),
            "broker" => new MqttCommunicationException("connection refused"),
            "socket" => new System.Net.Sockets.SocketException(111),
            "tls" => new System.Security.Authentication.AuthenticationException("untrusted broker"),
            _ => new InvalidOperationException("The outbox already holds sequence 7"),
        };
        Assert.True(AgentFailures.IsExpected(failure));
    }

    [Theory]
    [InlineData("missing key")]
    [InlineData("division")]
    [InlineData("cancelled")]
    public void Bugs_and_cancellation_are_not(string kind)
    {
        // Cancellation is for the caller to judge (a stop, or a time-out), never a failure to report.
        Exception other = kind switch
        {
            "missing key" => new KeyNotFoundException("sensor 'x' is not in the table"),
            "division" => new DivideByZeroException(),
            _ => new OperationCanceledException(),
        };
        Assert.False(AgentFailures.IsExpected(other));
    }
}
