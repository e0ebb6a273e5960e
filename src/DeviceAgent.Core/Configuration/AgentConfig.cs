using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceAgent.Delivery;
using DeviceAgent.Storage;

namespace DeviceAgent.Configuration;

/// <summary>The agent's JSON configuration (docs/device-agent.md describes every field).</summary>
public sealed record AgentConfig
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public required string DeviceId { get; init; }

    /// <summary>Device key URI: <c>pkcs11:…</c>, <c>tpm:…</c>, or <c>file:PATH</c> (with <see cref="AllowSoftwareKey"/>).</summary>
    public required string Key { get; init; }

    public bool AllowSoftwareKey { get; init; }

    /// <summary>Sequence state and outbox live here.</summary>
    public string DataDir { get; init; } = "/var/lib/sharevault-agent";

    /// <summary>Seconds between scheduled sensor reads.</summary>
    public double PollSeconds { get; init; } = 60;

    /// <summary><c>mqtt</c> (needs <see cref="Broker"/>) or <c>dir:PATH</c>.</summary>
    public AgentSink Sink { get; init; } = AgentSink.Mqtt;

    public BrokerConfig? Broker { get; init; }

    public OutboxConfig Outbox { get; init; } = new();

    public IReadOnlyList<SensorConfig> Sensors { get; init; } = [];

    public static AgentConfig Load(string path)
    {
        AgentConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<AgentConfig>(File.ReadAllBytes(path), Json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }

        return config ?? throw new FormatException($"{path} is empty");
    }
}

public sealed record BrokerConfig
{
    public required string Uri { get; init; }

    public string? CaFile { get; init; }

    public string? ClientCertFile { get; init; }

    public string? ClientKeyFile { get; init; }

    public string? Username { get; init; }

    public string? PasswordFile { get; init; }

    /// <summary>Log in as the device with a fresh proof signed by the device key (the ShareVault embedded broker's login, see DeviceProof).</summary>
    public bool DeviceProof { get; init; }

    public double SessionExpiryHours { get; init; } = 24 * 7;

    public double KeepAliveSeconds { get; init; } = 30;

    public double ResendAfterSeconds { get; init; } = 30;

    public double AckTimeoutSeconds { get; init; } = 15;

    public int MaxInFlight { get; init; } = 32;

    public BrokerOptions ToOptions()
    {
        if (!System.Uri.TryCreate(Uri, UriKind.Absolute, out var uri) || uri.Scheme is not ("mqtt" or "mqtts" or "tcp" or "ssl" or "tls"))
        {
            throw new FormatException($"broker.uri '{Uri}' is not mqtt://host:port or mqtts://host:port");
        }

        if (SessionExpiryHours <= 0)
        {
            throw new FormatException("broker.sessionExpiryHours must be > 0: receipts queued while offline need the session");
        }

        return new BrokerOptions
        {
            Uri = uri,
            CaFile = CaFile,
            ClientCertFile = ClientCertFile,
            ClientKeyFile = ClientKeyFile,
            Username = Username,
            PasswordFile = PasswordFile,
            SessionExpiry = TimeSpan.FromHours(SessionExpiryHours),
            KeepAlive = TimeSpan.FromSeconds(KeepAliveSeconds),
            ResendAfter = TimeSpan.FromSeconds(ResendAfterSeconds),
            AckTimeout = TimeSpan.FromSeconds(AckTimeoutSeconds),
            MaxInFlight = MaxInFlight,
        };
    }
}

public sealed record OutboxConfig
{
    public int MaxRecords { get; init; } = 100_000;

    public double MaxMegabytes { get; init; } = 256;

    public double MaxAgeDays { get; init; } = 7;

    public OutboxLimits ToLimits() => new()
    {
        MaxRecords = MaxRecords,
        MaxBytes = (long)(MaxMegabytes * 1024 * 1024),
        MaxAge = TimeSpan.FromDays(MaxAgeDays),
    };
}

/// <summary>One sensor: its driver <see cref="Type"/> (e.g. <c>bme280</c>), id, and driver-specific settings (bus, address, pin…).</summary>
public sealed record SensorConfig
{
    public required string Type { get; init; }

    public string? Id { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement> Settings { get; init; } = [];
}
