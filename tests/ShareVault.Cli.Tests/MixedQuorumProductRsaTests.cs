using System.Text.Json.Nodes;
using ShareVault.TestSupport;

namespace ShareVault.Cli.Tests;

/// <summary>
/// A 2-of-3 product-RSA key over two SoftHSM tokens and one swtpm, driven through the real
/// <c>sharevault</c> CLI (a child process, so the TPM connection is its own) and checked with OpenSSL.
/// </summary>
public sealed class MixedQuorumProductRsaTests(Swtpm swtpm, TempDataDir data) : IClassFixture<Swtpm>, IClassFixture<TempDataDir>
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "sharevault");

    [Fact]
    public async Task Two_of_three_over_softhsm_and_swtpm_signs_with_every_quorum_and_openssl_verifies()
    {
        var name = $"mix-{Guid.NewGuid():N}"[..12];
        // cli-* tokens: used by child processes only, never by this process meanwhile (see SoftHsm.Labels).
        var create = await RunCli(["key", "create", "--name", name, "--threshold", "2",
            "--custodian", SoftHsm.Shared.Uri("cli-a"),
            "--custodian", SoftHsm.Shared.Uri("cli-b"),
            "--custodian", swtpm.Uri("custody-t")]);
        Assert.True(create.ExitCode == 0, create.StdErr);
        Assert.True(File.Exists(Path.Combine(data.Path, "tpm", "custody-t", name + ".priv")), "the TPM key blob is in the data folder");

        var jwks = await RunCli(["key", "public", "--name", name]);
        Assert.True(jwks.ExitCode == 0, jwks.StdErr);
        var kids = JsonNode.Parse(jwks.StdOut)!["keys"]!.AsArray().Select(k => (string)k!["kid"]!).ToList();
        Assert.Equal(3, kids.Count);
        Assert.Equal(2, kids.Count(k => k.Contains("custody-t", StringComparison.Ordinal)));

        var message = Path.Combine(data.Path, name + ".msg");
        await File.WriteAllTextAsync(message, $"payout instruction for claim {Guid.NewGuid()}");
        foreach (var kid in kids)
        {
            var tag = kid.Replace('/', '_').Replace('+', '_');
            var signature = Path.Combine(data.Path, tag + ".sig");
            var pem = Path.Combine(data.Path, tag + ".pem");
            var sign = await RunCli(["sign", "--name", name, "--in", message, "--out", signature, "--quorum", kid]);
            Assert.True(sign.ExitCode == 0, $"{kid}: {sign.StdErr}");
            var pub = await RunCli(["key", "public", "--name", name, "--format", "pem", "--quorum", kid]);
            Assert.True(pub.ExitCode == 0, pub.StdErr);
            await File.WriteAllTextAsync(pem, pub.StdOut);

            var verify = await ProcessRunner.RunAsync("openssl", ["dgst", "-sha256", "-verify", pem, "-signature", signature, message]);
            Assert.True(verify.ExitCode == 0, $"{kid}: {verify.StdOut}{verify.StdErr}");
            Assert.Contains("Verified OK", verify.StdOut, StringComparison.Ordinal);

            // And a tampered message does not verify, so the check above can fail.
            var tampered = message + ".tampered";
            await File.WriteAllTextAsync(tampered, "something else");
            var bad = await ProcessRunner.RunAsync("openssl", ["dgst", "-sha256", "-verify", pem, "-signature", signature, tampered]);
            Assert.NotEqual(0, bad.ExitCode);
        }
    }

    private Task<ProcessRunner.Result> RunCli(IEnumerable<string> arguments) =>
        ProcessRunner.RunAsync(Cli, ["--data-dir", data.Path, .. arguments], TimeSpan.FromMinutes(3),
            new Dictionary<string, string> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });
}
