using DeviceAgent.Configuration;

namespace DeviceAgent.Tests.Configuration;

public sealed class AgentSinkTests
{
    [Theory]
    [InlineData("mqtt", AgentSinkKind.Mqtt, null)]
    [InlineData("dir:/var/out", AgentSinkKind.Directory, "/var/out")]
    public void Sink_text_parses_and_prints_back_unchanged(string text, AgentSinkKind kind, string? directory)
    {
        var sink = AgentSink.Parse(text);
        Assert.Equal(kind, sink.Kind);
        Assert.Equal(directory, sink.Directory);
        Assert.Equal(text, sink.ToString());
    }

    [Theory]
    [InlineData("MQTT")]
    [InlineData("dir:")]
    [InlineData("file:/x")]
    public void Other_sink_text_is_refused(string text)
    {
        Assert.Throws<FormatException>(() => AgentSink.Parse(text));
    }

    [Fact]
    public void Configuration_sink_defaults_to_mqtt_and_reads_dir()
    {
        using var dir = new ShareVault.TestSupport.TempDataDir();
        var path = Path.Combine(dir.Path, "agent.json");
        File.WriteAllText(path, """{"deviceId":"pi-1","key":"file:k","sink":"dir:/srv/evidence"}""");
        Assert.Equal(AgentSink.InDirectory("/srv/evidence"), AgentConfig.Load(path).Sink);

        File.WriteAllText(path, """{"deviceId":"pi-1","key":"file:k"}""");
        Assert.Equal(AgentSink.Mqtt, AgentConfig.Load(path).Sink);

        File.WriteAllText(path, """{"deviceId":"pi-1","key":"file:k","sink":"carrier-pigeon"}""");
        Assert.Contains("neither 'mqtt' nor 'dir:PATH'", Assert.Throws<FormatException>(() => AgentConfig.Load(path)).Message, StringComparison.Ordinal);
    }
}
