using System.Numerics;
using System.Text;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

public sealed class ShoupSigningTests(ShoupFixture fixture) : IClassFixture<ShoupFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Two_of_three_at_2048_bits_verifies_with_dotnet_and_openssl_and_every_pair_signs()
    {
        var key = fixture.CreateKey(2, 2048, "custody-a", "custody-b", "custody-c");
        try
        {
            Assert.Equal(2048, KeyPublication.PublicKeys(key).Single().Key.BitLength);
            Assert.Equal(key.Name, KeyPublication.PublicKeys(key).Single().Kid);
            var message = Encoding.UTF8.GetBytes("payout 1200 EUR to member 17");
            var signature = await new ThresholdSigner(fixture.Stores, Timeout).SignRawAsync(key, message, null, CancellationToken.None);
            Assert.Equal(256, signature.Signature.Length);
            Assert.True(ShoupFixture.VerifiesWithDotnet(key, message, signature.Signature));
            Assert.True(await fixture.VerifiesWithOpensslAsync(key, message, signature.Signature));
            Assert.False(ShoupFixture.VerifiesWithDotnet(key, Encoding.UTF8.GetBytes("payout 9999 EUR to member 17"), signature.Signature));

            await EverySubsetSignsAsync(key, message);

            var (jws, _) = await new ThresholdSigner(fixture.Stores, Timeout).SignJwsAsync(key, message, null, CancellationToken.None);
            Assert.True(Jws.TryParse(jws, out var parts));
            Assert.Equal(key.Name, parts.Kid);
            Assert.True(Jws.Verify(parts, KeyPublication.PublicKeys(key).Single().Key));
        }
        finally
        {
            fixture.Delete(key);
        }
    }

    [Fact]
    public async Task Three_of_five_at_2048_bits_verifies_with_dotnet_and_openssl_and_every_triple_signs()
    {
        var key = fixture.CreateKey(3, 2048, "custody-a", "custody-b", "custody-c", "custody-d", "custody-e");
        try
        {
            var message = Encoding.UTF8.GetBytes("ledger checkpoint 42");
            var signature = await new ThresholdSigner(fixture.Stores, Timeout).SignRawAsync(key, message, null, CancellationToken.None);
            Assert.True(ShoupFixture.VerifiesWithDotnet(key, message, signature.Signature));
            Assert.True(await fixture.VerifiesWithOpensslAsync(key, message, signature.Signature));
            Assert.Equal(10, await EverySubsetSignsAsync(key, message));
        }
        finally
        {
            fixture.Delete(key);
        }
    }

    [Fact]
    public async Task Fewer_than_threshold_custodians_cannot_produce_a_valid_signature()
    {
        var key = fixture.CreateKey(3, 2048, "custody-f", "spare-1", "spare-2", "spare-3");
        try
        {
            var message = Encoding.UTF8.GetBytes("claim 7 approved");
            var reachable = new HashSet<string>(["custody-f", "spare-2"]);
            var signer = OnlyReachable(reachable);
            var refused = await Assert.ThrowsAsync<ThresholdSigningException>(() => signer.SignAsync(key, _ => message, null, CancellationToken.None));
            Assert.Contains(refused.Failures, f => f.Custodian == "spare-1" && f.Reason == CustodianFailureReason.Unreachable);
            Assert.Contains(refused.Failures, f => f.Custodian == "spare-3" && f.Reason == CustodianFailureReason.Unreachable);

            // And the math agrees: real partials of two custodians, combined as well as two can be, do not verify.
            var shoup = ShoupKey.From(key);
            var x = BigEndian.ToInteger(Pkcs1Encoding.EncodeSha256(message, shoup.PublicKey.ByteLength));
            var z = ShoupMath.PartialBase(x, shoup.Delta, shoup.Modulus);
            var partials = new Dictionary<CustodianRecord, BigInteger>();
            foreach (var c in key.Custodians.Where(c => reachable.Contains(c.Name)))
            {
                var store = (IShoupShareStore)fixture.Stores.Get(ShoupFixture.Address(c));
                partials[c] = BigEndian.ToInteger(store.ShoupPartial(c.ObjectLabel, BigEndian.ToBytes(z, shoup.PublicKey.ByteLength)));
            }

            Assert.Null(ShoupSigner.TryCombine(shoup, x, partials));

            // With the third custodian back, the same two partials plus its one do verify.
            var third = key.Custodian("spare-3");
            var thirdStore = (IShoupShareStore)fixture.Stores.Get(ShoupFixture.Address(third));
            partials[third] = BigEndian.ToInteger(thirdStore.ShoupPartial(third.ObjectLabel, BigEndian.ToBytes(z, shoup.PublicKey.ByteLength)));
            Assert.NotNull(ShoupSigner.TryCombine(shoup, x, partials));
        }
        finally
        {
            fixture.Delete(key);
        }
    }

    [Fact]
    public async Task Custodian_whose_share_object_was_replaced_is_identified_by_name()
    {
        var key = fixture.CreateKey(2, 2048, "custody-d", "custody-e", "custody-f");
        try
        {
            // Replace custody-e's share with a wrong one under the same label (as a swapped or damaged token would hold).
            var victim = key.Custodian("custody-e");
            var store = (IShoupShareStore)fixture.Stores.Get(ShoupFixture.Address(victim));
            var modulus = ShoupFixture.Modulus(key);
            store.DeleteKey(victim.ObjectLabel);
            store.ImportShoupShare(victim.ObjectLabel, k => ShareWrapping.Wrap(k, modulus, ShoupCeremony.ShareGenerator, ShoupDealer.RandomBelow(modulus)), persistent: true);

            var message = Encoding.UTF8.GetBytes("payout to member 3");
            var signature = await new ThresholdSigner(fixture.Stores, Timeout).SignRawAsync(key, message, null, CancellationToken.None);
            Assert.True(ShoupFixture.VerifiesWithDotnet(key, message, signature.Signature));
            Assert.Equal(["custody-d", "custody-f"], signature.Signers);
            var named = Assert.Single(signature.Failures);
            Assert.Equal("custody-e", named.Custodian);
            Assert.Equal(CustodianFailureReason.WrongPartial, named.Reason);

            // With only the bad custodian and one good one reachable, signing fails and names it.
            var refused = await Assert.ThrowsAsync<ThresholdSigningException>(() =>
                OnlyReachable(new HashSet<string>(["custody-d", "custody-e"])).SignAsync(key, _ => message, null, CancellationToken.None));
            Assert.Contains(refused.Failures, f => f.Custodian == "custody-e" && f.Reason == CustodianFailureReason.WrongPartial);
            Assert.DoesNotContain(refused.Failures, f => f.Custodian == "custody-d" && f.Reason == CustodianFailureReason.WrongPartial);
            Assert.Contains("custody-e", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            fixture.Delete(key);
        }
    }

    [Fact]
    public async Task Token_that_computes_wrong_only_on_messages_is_found_by_trying_other_subsets()
    {
        var key = fixture.CreateKey(2, 2048, "custody-a", "custody-c", "custody-e");
        try
        {
            // custody-c answers the verification-value check correctly but corrupts every other partial.
            var v = ShoupKey.From(key).VerificationBase;
            var signer = new ShoupSigner(
                address => address.Name == "custody-c" ? new WrongOnMessagesStore((IShoupShareStore)fixture.Stores.Get(address), v) : fixture.Stores.Get(address),
                _ => { },
                Timeout);
            var message = Encoding.UTF8.GetBytes("policy 12 premium");
            var signature = await signer.SignAsync(key, _ => message, null, CancellationToken.None);
            Assert.True(ShoupFixture.VerifiesWithDotnet(key, message, signature.Signature));
            Assert.Equal(["custody-a", "custody-e"], signature.Signers);
            Assert.Equal("custody-c", Assert.Single(signature.Failures).Custodian);
        }
        finally
        {
            fixture.Delete(key);
        }
    }

    private ShoupSigner OnlyReachable(IReadOnlySet<string> reachable) => new(
        address => reachable.Contains(address.Name)
            ? fixture.Stores.Get(address)
            : throw new ShareStoreException(ShareStoreError.DeviceUnreachable, $"Token '{address.Name}' is unreachable", "CKR_DEVICE_REMOVED"),
        _ => { },
        Timeout);

    private async Task<int> EverySubsetSignsAsync(KeyRecord key, byte[] message)
    {
        var names = key.Custodians.Select(c => c.Name).ToList();
        var count = 0;
        foreach (var subset in Subsets(names, key.Threshold))
        {
            var signature = await OnlyReachable(subset.ToHashSet()).SignAsync(key, _ => message, null, CancellationToken.None);
            Assert.Equal(subset, signature.Signers);
            Assert.True(ShoupFixture.VerifiesWithDotnet(key, message, signature.Signature), $"subset {string.Join(',', subset)}");
            count++;
        }

        return count;
    }

    private static IEnumerable<List<string>> Subsets(List<string> items, int size) =>
        size == 0
            ? [[]]
            : Enumerable.Range(0, items.Count - size + 1).SelectMany(i => Subsets(items[(i + 1)..], size - 1).Select(rest => (List<string>)[items[i], .. rest]));
}
