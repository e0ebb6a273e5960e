using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.TestSupport;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

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
}
