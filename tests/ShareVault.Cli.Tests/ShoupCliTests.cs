using System.Text.Json.Nodes;
using ShareVault.Claims.TestSupport;
using ShareVault.Custody.Keys;
using ShareVault.TestSupport;

namespace ShareVault.Cli.Tests;

/// <summary>A real Shoup dealer ceremony (fresh safe primes) and signing through the CLI, checked with openssl.</summary>
public sealed class ShoupCliTests : IDisposable
{
    private readonly TempDataDir _dataDir = new();

    [Fact]
    public async Task Cli_real_ceremony_at_2048_bits_gives_one_public_key_that_signs_raw_and_jws()
    {
        var name = $"cli-{Guid.NewGuid():N}"[..14];
        var dataDir = Path.Combine(_dataDir.Path, name);
        // Tokens of this test's CLI processes alone (see SoftHsm.Labels).
        var uris = new[] { "cli-d", "cli-e", "cli-f" }.Select(t => SoftHsm.Shared.Uri(t, name)).ToList();
        var create = await CliRunner.RunAsync(dataDir, TimeSpan.FromMinutes(10), ["key", "create", "--name", name, "--scheme", "shoup-rsa", "--threshold", "2", "--bits", "2048",
                .. uris.SelectMany(u => new[] { "--custodian", u })]);
        Assert.True(create.ExitCode == 0, create.StdErr);
        Assert.Contains("safe prime", create.StdErr, StringComparison.Ordinal);
        Assert.Contains("probe passed", create.StdErr, StringComparison.Ordinal);
        Assert.Contains("RSA-2048", create.StdOut, StringComparison.Ordinal);

        var jwks = await CliRunner.RunAsync(dataDir, "key", "public", "--name", name, "--format", "jwks");
        var keys = JsonNode.Parse(jwks.StdOut)!["keys"]!.AsArray();
        Assert.Equal(name, Assert.Single(keys)!["kid"]!.GetValue<string>());
        var pem = await CliRunner.RunAsync(dataDir, "key", "public", "--name", name, "--format", "pem");
        var pemPath = Path.Combine(dataDir, "pub.pem");
        await File.WriteAllTextAsync(pemPath, pem.StdOut);

        var message = Path.Combine(dataDir, "payout.json");
        await File.WriteAllTextAsync(message, "{\"claim\":7,\"amount\":1200}");
        foreach (var format in new[] { "raw", "jws" })
        {
            var sig = Path.Combine(dataDir, "sig." + format);
            var sign = await CliRunner.RunAsync(dataDir, "sign", "--name", name, "--in", message, "--out", sig, "--format", format);
            Assert.True(sign.ExitCode == 0, sign.StdErr);
            var verify = await CliRunner.RunAsync(dataDir, "verify", "--name", name, "--in", message, "--sig", sig);
            Assert.True(verify.ExitCode == 0, verify.StdErr);
            if (format == "raw")
            {
                var openssl = await ProcessRunner.RunAsync("openssl", ["dgst", "-sha256", "-verify", pemPath, "-signature", sig, message]);
                Assert.Equal(0, openssl.ExitCode);
            }
        }

        await File.WriteAllTextAsync(message, "{\"claim\":7,\"amount\":9999}");
        var tampered = await CliRunner.RunAsync(dataDir, "verify", "--name", name, "--in", message, "--sig", Path.Combine(dataDir, "sig.raw"));
        Assert.NotEqual(0, tampered.ExitCode);

        var list = await CliRunner.RunAsync(dataDir, "custodian", "list", "--custodian", SoftHsm.Shared.Uri("cli-e"));
        Assert.Contains($"{name}\tshoup-share", list.StdOut, StringComparison.Ordinal);

        var record = new KeyCatalog(dataDir).Load(name);
        var recordText = await File.ReadAllTextAsync(Path.Combine(dataDir, "keys", name + ".json"));
        Assert.Equal(KeyScheme.ShoupRsa, record.Scheme);
        // Only public parts are kept: N, e, n, v and per custodian its index and vᵢ.
        var shoupKeys = JsonNode.Parse(recordText)!["shoup"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal);
        Assert.Equal(["exponent", "modulus", "players", "verificationBase"], shoupKeys);
    }

    public void Dispose() => _dataDir.Dispose();
}
