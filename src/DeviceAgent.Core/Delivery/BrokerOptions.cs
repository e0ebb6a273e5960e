namespace DeviceAgent.Delivery;

/// <summary>How the agent reaches its MQTT broker. Secrets are referenced by file, never inlined.</summary>
public sealed record BrokerOptions
{
    /// <summary><c>mqtt://host:1883</c> (plain TCP, tests and closed networks) or <c>mqtts://host:8883</c> (TLS).</summary>
    public required Uri Uri { get; init; }

    /// <summary>PEM file of the CA certificate(s) the broker's certificate must chain to; only these are trusted (CA pinning).</summary>
    public string? CaFile { get; init; }

    /// <summary>PEM client certificate for TLS client authentication (with <see cref="ClientKeyFile"/>).</summary>
    public string? ClientCertFile { get; init; }

    public string? ClientKeyFile { get; init; }

    public string? Username { get; init; }

    /// <summary>File holding the broker password (one line).</summary>
    public string? PasswordFile { get; init; }

    /// <summary>
    /// When set, log in with username = device id and a fresh <see cref="ShareVault.Evidence.DeviceProof"/> password
    /// signed by this key at every connect: no shared secret exists, and a hardware key works.
    /// </summary>
    public System.Security.Cryptography.ECDsa? DeviceProofKey { get; init; }

    /// <summary>MQTT 5 session expiry (§3.1.2.11.2): the broker keeps the session and queued receipts this long while the device is offline.</summary>
    public TimeSpan SessionExpiry { get; init; } = TimeSpan.FromDays(7);

    public TimeSpan KeepAlive { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the broker has to answer a CONNECT, SUBSCRIBE or PUBLISH (CONNACK, SUBACK, PUBACK). A
    /// connection on which an answer does not come in time is closed and made again.
    /// </summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>A record sent but not receipted within this time is sent again.</summary>
    public TimeSpan ResendAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Most records sent and awaiting a receipt at once.</summary>
    public int MaxInFlight { get; init; } = 32;

    /// <summary>Reconnect back-off: the wait before the first reconnect (more than zero), doubling up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan MinBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two reconnects; at least <see cref="MinBackoff"/>.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Randomise each reconnect wait (Polly's decorrelated jitter), so devices that lost one broker do not return together. Off only for tests.</summary>
    public bool ReconnectJitter { get; init; } = true;

    public bool UseTls => Uri.Scheme is "mqtts" or "ssl" or "tls";

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Uri);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(MinBackoff, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBackoff, MinBackoff);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(AckTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ResendAfter, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxInFlight);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(SessionExpiry, TimeSpan.Zero);
    }
}
