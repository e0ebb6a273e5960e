using ShareVault.Cli;

namespace ShareVault.Cli.Tests;

/// <summary>The gas-paying key file of the chain verbs: accepted as 64 hex digits, refused otherwise without quoting it.</summary>
public sealed class ChainSenderKeyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sv-sender-key-").FullName;

    [Theory]
    [InlineData("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")]
    [InlineData("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\n")]
    public void A_hex_private_key_is_read(string content)
    {
        var file = Write(content);
        Assert.Equal(content.Trim(), ChainCommands.ReadSenderKey(new FileInfo(file)));
    }

    [Theory]
    [InlineData("my-secret-passphrase-0123")]
    [InlineData("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690")] // 63 digits
    public void Anything_else_is_refused_without_its_content_in_the_message(string content)
    {
        var file = Write(content);
        var refusal = Assert.Throws<ArgumentException>(() => ChainCommands.ReadSenderKey(new FileInfo(file)));
        Assert.DoesNotContain(content.Trim(), refusal.Message, StringComparison.Ordinal);
        Assert.Contains(file, refusal.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string content)
    {
        var file = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".key");
        File.WriteAllText(file, content);
        return file;
    }
}
