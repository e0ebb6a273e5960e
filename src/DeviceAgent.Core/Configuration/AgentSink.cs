using System.Text.Json;
using System.Text.Json.Serialization;
using DeviceAgent.Delivery;

namespace DeviceAgent.Configuration;

/// <summary>Where the agent delivers records.</summary>
public enum AgentSinkKind
{
    /// <summary><c>mqtt</c>: to the broker, with receipts.</summary>
    Mqtt,

    /// <summary><c>dir:PATH</c>: as files into a folder.</summary>
    Directory,
}

/// <summary>
/// The agent's sink, written in configuration and on the command line as <c>mqtt</c> or
/// <c>dir:PATH</c>; <see cref="ToString"/> gives that text back unchanged.
/// </summary>
[JsonConverter(typeof(AgentSinkJsonConverter))]
public readonly record struct AgentSink
{
    private AgentSink(AgentSinkKind kind, string? directory)
    {
        Kind = kind;
        Directory = directory;
    }

    public static AgentSink Mqtt { get; } = new(AgentSinkKind.Mqtt, null);

    public AgentSinkKind Kind { get; }

    /// <summary>The folder of a <see cref="AgentSinkKind.Directory"/> sink; null for MQTT.</summary>
    public string? Directory { get; }

    public static AgentSink InDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        return new(AgentSinkKind.Directory, directory);
    }

    /// <summary>Parses <c>mqtt</c> or <c>dir:PATH</c>.</summary>
    /// <exception cref="FormatException">Any other text.</exception>
    public static AgentSink Parse(string? text) =>
        text == "mqtt" ? Mqtt
        : DirectorySink.ParseSpec(text) is { } directory ? InDirectory(directory)
        : throw new FormatException($"sink '{text}' is neither 'mqtt' nor 'dir:PATH'");

    public override string ToString() => Kind == AgentSinkKind.Mqtt ? "mqtt" : "dir:" + Directory;
}

internal sealed class AgentSinkJsonConverter : JsonConverter<AgentSink>
{
    public override AgentSink Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("sink must be a string: 'mqtt' or 'dir:PATH'");
        }

        try
        {
            return AgentSink.Parse(reader.GetString());
        }
        catch (FormatException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, AgentSink value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value.ToString());
    }
}
