using System.Text.Json.Nodes;
using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;

namespace ShareVault.Cli.Tests;

/// <summary>The CLI verbs of issue 2 are a contract for scripts: these tests drive them as a user would.</summary>
public sealed class ProductRsaCliTests : IDisposable
{
    private static readonly SoftHsm Hsm = SoftHsm.Shared;
    private readonly string _dir = Directory.CreateTempSubdirectory("sv-cli-").FullName;

    private string DataDir => Path.Combine(_dir, "data");

    private async Task<string> CreateKeyAsync(int threshold, params string[] tokens)
    {
        var name = $"pool-{Guid.NewGuid():N}"[..13];
        string[] args = ["key", "create", "--name", name, "--scheme", "product-rsa", "--threshold", threshold.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bits", "2048",
            .. tokens.SelectMany(t => new[] { "--custodian", Hsm.Uri(t) })];
        var result = await CliRunner.RunAsync(DataDir, args);
        Assert.True(result.ExitCode == 0, result.StdErr);
        return name;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Signatures_verify_with_openssl_against_the_pem_export(int threshold)
    {
        var name = await CreateKeyAsync(threshold, "cli-a", "cli-b", "cli-c");
        var message = Path.Combine(_dir, "payout.json");
        await File.WriteAllTextAsync(message, "{\"amount\":100}");

        var jwks = JsonNode.Parse((await CliRunner.RunAsync(DataDir, "key", "public", "--name", name, "--format", "jwks")).StdOut)!;
        var kids = jwks["keys"]!.AsArray().Select(k => k!["kid"]!.GetValue<string>()).ToList();
        Assert.Equal(threshold == 2 ? 3 : 1, kids.Count);

        foreach (var kid in kids)
        {
            var sig = Path.Combine(_dir, "sig.bin");
            var sign = await CliRunner.RunAsync(DataDir, "sign", "--name", name, "--in", message, "--out", sig, "--format", "raw", "--quorum", kid);
            Assert.True(sign.ExitCode == 0, sign.StdErr);

            var pem = Path.Combine(_dir, "key.pem");
            await File.WriteAllTextAsync(pem, (await CliRunner.RunAsync(DataDir, "key", "public", "--name", name, "--format", "pem", "--quorum", kid)).StdOut);
            var openssl = await CliRunner.OpenSslAsync("dgst", "-sha256", "-verify", pem, "-signature", sig, message);
            Assert.True(openssl.ExitCode == 0, openssl.StdOut + openssl.StdErr);
            Assert.Contains("Verified OK", openssl.StdOut, StringComparison.Ordinal);

            Assert.Equal(0, (await CliRunner.RunAsync(DataDir, "verify", "--name", name, "--in", message, "--sig", sig)).ExitCode);
        }
    }

    [Fact]
    public async Task Jws_signatures_verify_and_tampering_is_refused()
    {
        var name = await CreateKeyAsync(2, "cli-a", "cli-b", "cli-c");
        var message = Path.Combine(_dir, "m.txt");
        await File.WriteAllTextAsync(message, "hello pool");
        var jws = Path.Combine(_dir, "m.jws");

        var sign = await CliRunner.RunAsync(DataDir, "sign", "--name", name, "--in", message, "--out", jws, "--format", "jws");
        var valid = await CliRunner.RunAsync(DataDir, "verify", "--name", name, "--in", message, "--sig", jws);
        await File.WriteAllTextAsync(message, "hello pooL");
        var tampered = await CliRunner.RunAsync(DataDir, "verify", "--name", name, "--in", message, "--sig", jws);

        Assert.Equal(0, sign.ExitCode);
        Assert.Equal(0, valid.ExitCode);
        Assert.Contains($"{name}/cli-a+cli-b", valid.StdOut, StringComparison.Ordinal);
        Assert.Equal(1, tampered.ExitCode);
        Assert.StartsWith("sharevault: invalid signature", tampered.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failures_exit_non_zero_with_a_one_line_reason()
    {
        var result = await CliRunner.RunAsync(DataDir, "sign", "--name", "no-such-key", "--in", "/etc/hostname", "--out", Path.Combine(_dir, "x"));

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("sharevault: No key named 'no-such-key' in " + Path.Combine(DataDir, "keys"), result.StdErr.Trim());
    }

    [Theory]
    [InlineData("key", "create")]
    [InlineData("key", "public")]
    [InlineData("sign")]
    [InlineData("verify")]
    [InlineData("custodian", "list")]
    public async Task Every_verb_has_help(params string[] verb)
    {
        var result = await CliRunner.RunAsync(DataDir, [.. verb, "--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("--data-dir", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Custodian_list_shows_labels_and_kinds_only()
    {
        var name = await CreateKeyAsync(2, "cli-a", "cli-b");

        var result = await CliRunner.RunAsync(DataDir, "custodian", "list", "--custodian", Hsm.Uri("cli-b"));

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"{name}\trsa-private-key", result.StdOut, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
