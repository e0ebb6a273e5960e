using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Hardware;
using ShareVault.Keys;
using ShareVault.TestSupport;
using ShareVault.Threshold.Shoup;

namespace ShareVault.Tests.Threshold.Shoup;

public sealed class ShoupCeremonyTests(ShoupFixture fixture) : IClassFixture<ShoupFixture>
{
    [Fact]
    public void Probe_refuses_a_token_that_computes_wrong_and_nothing_of_the_real_key_is_sent()
    {
        var name = $"shoup-{Guid.NewGuid():N}"[..16];
        // Tokens no other test's ceremony uses: a probe is a session object, seen by every session of
        // this process, so a probe of a ceremony running in parallel would look like one left behind.
        var tokens = new[] { "ceremony-a", "ceremony-b", "spare-4" };
        var uris = tokens.Select(t => SoftHsm.Shared.Uri(t, name)).Append("tpm:object=custody-t?tcti=swtpm:host=127.0.0.1,port=1").ToList();
        var primes = new FixedSafePrimes();
        WrongPartialStore? faulty = null;
        var ceremony = new ShoupCeremony(
            address => address.Name == "ceremony-b"
                ? faulty = new WrongPartialStore((IShoupShareStore)fixture.Stores.Get(address))
                : fixture.Stores.Get(address),
            fixture.Catalog, TimeProvider.System, primes);

        var refused = Assert.Throws<ShoupCeremonyException>(() => ceremony.Create(name, 2, 2048, uris));

        Assert.Equal(["ceremony-b", "custody-t"], refused.Failures.Select(f => f.Custodian));
        Assert.Contains("computes Shoup partials wrongly", refused.Failures[0].Reason, StringComparison.Ordinal);
        Assert.Contains("cannot be opened", refused.Failures[1].Reason, StringComparison.Ordinal);
        Assert.Contains("ceremony-b", refused.Message, StringComparison.Ordinal);
        // Nothing of the real key existed: no safe primes were drawn, no share was imported anywhere.
        Assert.Equal(0, primes.Calls);
        Assert.Equal(0, faulty!.PersistentImports);
        Assert.False(fixture.Catalog.Exists(name));
        foreach (var token in tokens)
        {
            var objects = fixture.Stores.Get(CustodianAddress.Parse(SoftHsm.Shared.Uri(token), name)).ListObjects();
            Assert.DoesNotContain(objects, o => o.Label == name || o.Label.StartsWith("probe-", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Cli_real_ceremony_at_2048_bits_gives_one_public_key_that_signs_raw_and_jws()
    {
        var name = $"cli-{Guid.NewGuid():N}"[..14];
        var dataDir = Path.Combine(fixture.DataDir, name);
        // Tokens of this test's CLI processes alone (see SoftHsm.Labels).
        var uris = new[] { "cli-d", "cli-e", "cli-f" }.Select(t => SoftHsm.Shared.Uri(t, name)).ToList();
        var create = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(10),
            ["key", "create", "--name", name, "--scheme", "shoup-rsa", "--threshold", "2", "--bits", "2048",
                .. uris.SelectMany(u => new[] { "--custodian", u })]);
        Assert.True(create.ExitCode == 0, create.StdErr);
        Assert.Contains("safe prime", create.StdErr, StringComparison.Ordinal);
        Assert.Contains("probe passed", create.StdErr, StringComparison.Ordinal);
        Assert.Contains("RSA-2048", create.StdOut, StringComparison.Ordinal);

        var jwks = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["key", "public", "--name", name, "--format", "jwks"]);
        var keys = JsonNode.Parse(jwks.StdOut)!["keys"]!.AsArray();
        Assert.Equal(name, Assert.Single(keys)!["kid"]!.GetValue<string>());
        var pem = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["key", "public", "--name", name, "--format", "pem"]);
        var pemPath = Path.Combine(dataDir, "pub.pem");
        await File.WriteAllTextAsync(pemPath, pem.StdOut);

        var message = Path.Combine(dataDir, "payout.json");
        await File.WriteAllTextAsync(message, "{\"claim\":7,\"amount\":1200}");
        foreach (var format in new[] { "raw", "jws" })
        {
            var sig = Path.Combine(dataDir, "sig." + format);
            var sign = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["sign", "--name", name, "--in", message, "--out", sig, "--format", format]);
            Assert.True(sign.ExitCode == 0, sign.StdErr);
            var verify = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["verify", "--name", name, "--in", message, "--sig", sig]);
            Assert.True(verify.ExitCode == 0, verify.StdErr);
            if (format == "raw")
            {
                var openssl = await ProcessRunner.RunAsync("openssl", ["dgst", "-sha256", "-verify", pemPath, "-signature", sig, message]);
                Assert.Equal(0, openssl.ExitCode);
            }
        }

        await File.WriteAllTextAsync(message, "{\"claim\":7,\"amount\":9999}");
        var tampered = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["verify", "--name", name, "--in", message, "--sig", Path.Combine(dataDir, "sig.raw")]);
        Assert.NotEqual(0, tampered.ExitCode);

        var list = await SharevaultAsync(dataDir, TimeSpan.FromMinutes(2), ["custodian", "list", "--custodian", SoftHsm.Shared.Uri("cli-e")]);
        Assert.Contains($"{name}\tshoup-share", list.StdOut, StringComparison.Ordinal);

        var record = new KeyCatalog(dataDir).Load(name);
        var recordText = await File.ReadAllTextAsync(Path.Combine(dataDir, "keys", name + ".json"));
        Assert.Equal(KeyRecord.ShoupRsa, record.Scheme);
        // Only public parts are kept: N, e, n, v and per custodian its index and vᵢ.
        var shoupKeys = JsonNode.Parse(recordText)!["shoup"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal);
        Assert.Equal(["exponent", "modulus", "players", "verificationBase"], shoupKeys);
        foreach (var c in record.Custodians)
        {
            fixture.Stores.Get(ShoupFixture.Address(c)).DeleteKey(c.ObjectLabel);
        }
    }

    private static Task<ProcessRunner.Result> SharevaultAsync(string dataDir, TimeSpan timeout, string[] args) =>
        ProcessRunner.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "sharevault.dll"), .. args, "--data-dir", dataDir], timeout,
            new Dictionary<string, string> { ["SOFTHSM2_CONF"] = SoftHsm.Shared.ConfPath });
}
