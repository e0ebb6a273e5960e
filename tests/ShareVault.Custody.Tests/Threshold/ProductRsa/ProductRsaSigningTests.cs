using System.Security.Cryptography;
using System.Text;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.TestSupport;

namespace ShareVault.Custody.Tests.Threshold.ProductRsa;

public sealed class ProductRsaSigningTests : IDisposable
{
    private static readonly SoftHsm Hsm = SoftHsm.Shared;
    private readonly string _dataDir = Directory.CreateTempSubdirectory("sv-prsa-").FullName;
    private readonly ShareStoreRegistry _stores;
    private readonly KeyCatalog _catalog;

    public ProductRsaSigningTests()
    {
        _stores = new ShareStoreRegistry(_dataDir);
        _catalog = new KeyCatalog(_dataDir);
    }

    private static string NewName() => $"pool-{Guid.NewGuid():N}"[..13];

    private KeyRecord Create(int threshold, params string[] tokens) =>
        new ProductRsaCeremony(_stores, _catalog, TimeProvider.System)
            .Create(NewName(), threshold, 2048, [.. tokens.Select(t => Hsm.Uri(t))]);

    [Theory]
    [InlineData(2, 3)]
    [InlineData(3, 3)]
    public async Task Every_quorum_signs_and_dotnet_rsa_verifies(int threshold, int custodians)
    {
        var key = Create(threshold, [.. new[] { "custody-a", "custody-b", "custody-c" }.Take(custodians)]);
        var signer = new ThresholdSigner(_stores);
        var message = Encoding.UTF8.GetBytes("pay 100 EUR to member 7");

        Assert.Equal(custodians == 3 && threshold == 2 ? 3 : 1, key.Quorums.Count);
        foreach (var quorum in key.Quorums)
        {
            var signature = await signer.SignRawAsync(key, message, quorum.Kid, CancellationToken.None);

            using var rsa = ProductRsaKey.CompositeKey(key, quorum).ToRsa();
            Assert.Equal(quorum.Kid, signature.Kid);
            Assert.Equal(2048 * threshold / 8, signature.Signature.Length);
            Assert.True(rsa.VerifyData(message, signature.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
            Assert.False(rsa.VerifyData(Encoding.UTF8.GetBytes("pay 999 EUR to member 7"), signature.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
        }
    }

    [Fact]
    public async Task Quorum_kids_name_the_members_in_creation_order()
    {
        var key = Create(2, "custody-c", "custody-a", "custody-b");

        Assert.Equal(
            [$"{key.Name}/custody-c+custody-a", $"{key.Name}/custody-c+custody-b", $"{key.Name}/custody-a+custody-b"],
            key.Quorums.Select(q => q.Kid));
        var jws = await new ThresholdSigner(_stores).SignJwsAsync(key, [1, 2, 3], null, CancellationToken.None);
        Assert.True(Jws.TryParse(jws.Jws, out var parts));
        Assert.Equal($"{key.Name}/custody-c+custody-a", parts.Kid);
        Assert.True(Jws.Verify(parts, KeyPublication.Select(key, parts.Kid)[0].Key));
    }

    [Fact]
    public async Task A_token_that_lost_its_key_is_named_and_another_quorum_signs()
    {
        var key = Create(2, "custody-a", "custody-b", "custody-c");
        _stores.Get(CustodianAddress.Parse(key.Custodian("custody-a").Uri, key.Name)).DeleteKey(key.Name);
        var message = Encoding.UTF8.GetBytes("claim 42");

        var signature = await new ThresholdSigner(_stores).SignRawAsync(key, message, null, CancellationToken.None);

        Assert.Equal($"{key.Name}/custody-b+custody-c", signature.Kid);
        var failure = Assert.Single(signature.Failures);
        Assert.Equal("custody-a", failure.Custodian);
        Assert.Equal(CustodianFailureReason.KeyMissing, failure.Reason);
        Assert.NotNull(KeyPublication.VerifyRaw(KeyPublication.PublicKeys(key), message, signature.Signature));
    }

    [Fact]
    public async Task An_unreachable_custodian_is_named_and_another_quorum_signs()
    {
        var key = Create(2, "custody-a", "custody-b", "custody-c");
        // The custodian's token goes away: its URI now names a module that is not there.
        var moved = RewriteCustodian(key, "custody-b", uri => uri.Replace(SoftHsm.ModulePath, "/nonexistent/libsofthsm2.so", StringComparison.Ordinal));

        var signature = await new ThresholdSigner(_stores).SignRawAsync(moved, [9, 9], null, CancellationToken.None);

        Assert.Equal($"{key.Name}/custody-a+custody-c", signature.Kid);
        Assert.Equal("custody-b", Assert.Single(signature.Failures).Custodian);
        Assert.Equal(CustodianFailureReason.Unreachable, signature.Failures[0].Reason);
    }

    [Fact]
    public async Task A_tampered_partial_is_detected_and_its_custodian_named()
    {
        // Tokens of this test alone: it rewrites a token (a key replaced) while other classes of this
        // process sign on theirs, and SoftHSM 2.6 rewrites token files unlocked (see SoftHsm.Labels).
        var key = Create(2, "tamper-a", "tamper-b", "tamper-c");
        // Someone replaces tamper-b's key inside the token with another key under the same label:
        // the token now answers with a partial that is not EM^d_b mod n_b, or, when the input exceeds
        // the new modulus (about half the time), refuses with CKR_GENERAL_ERROR. Both are a wrong partial.
        var address = CustodianAddress.Parse(key.Custodian("tamper-b").Uri, key.Name);
        var store = _stores.Get(address);
        store.DeleteKey(key.Name);
        store.GenerateRsaKey(key.Name, 2048);

        var signer = new ThresholdSigner(_stores);
        var pinned = await Assert.ThrowsAsync<ThresholdSigningException>(() =>
            signer.SignRawAsync(key, [1], $"{key.Name}/tamper-a+tamper-b", CancellationToken.None));
        var fallback = await signer.SignRawAsync(key, [1], null, CancellationToken.None);

        var failure = Assert.Single(pinned.Failures);
        Assert.Equal("tamper-b", failure.Custodian);
        Assert.True(failure.Reason == CustodianFailureReason.WrongPartial, $"expected WrongPartial, got {failure}");
        Assert.Contains("tamper-b", pinned.Message, StringComparison.Ordinal);
        Assert.Equal($"{key.Name}/tamper-a+tamper-c", fallback.Kid);
    }

    [Fact]
    public async Task Fewer_than_t_working_custodians_cannot_sign()
    {
        var key = Create(2, "custody-a", "custody-b", "custody-c");
        foreach (var name in new[] { "custody-a", "custody-c" })
        {
            _stores.Get(CustodianAddress.Parse(key.Custodian(name).Uri, key.Name)).DeleteKey(key.Name);
        }

        var error = await Assert.ThrowsAsync<ThresholdSigningException>(() =>
            new ThresholdSigner(_stores).SignRawAsync(key, [1], null, CancellationToken.None));

        Assert.Equal(["custody-a", "custody-c"], error.Failures.Select(f => f.Custodian).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Key_creation_with_a_missing_token_leaves_no_key_behind()
    {
        var name = NewName();
        var ceremony = new ProductRsaCeremony(_stores, _catalog, TimeProvider.System);

        var error = Assert.Throws<ShareStoreException>(() => ceremony.Create(name, 2, 2048,
            [Hsm.Uri("custody-a"), Hsm.Uri("custody-b"), Hsm.Uri("custody-a").Replace("token=custody-a", "token=gone", StringComparison.Ordinal)]));

        Assert.Equal(ShareStoreError.TokenNotFound, error.Error);
        Assert.False(_catalog.Exists(name));
        var a = _stores.Get(CustodianAddress.Parse(Hsm.Uri("custody-a"), name));
        Assert.DoesNotContain(a.ListObjects(), o => o.Label == name);
    }

    private static KeyRecord RewriteCustodian(KeyRecord key, string custodian, Func<string, string> rewrite) => new()
    {
        Name = key.Name,
        Scheme = key.Scheme,
        Threshold = key.Threshold,
        Bits = key.Bits,
        CreatedAt = key.CreatedAt,
        Quorums = key.Quorums,
        Custodians = [.. key.Custodians.Select(c => c.Name != custodian ? c : new CustodianRecord
        {
            Name = c.Name,
            Uri = rewrite(c.Uri),
            ObjectLabel = c.ObjectLabel,
            Kind = c.Kind,
            Modulus = c.Modulus,
            Exponent = c.Exponent,
        })],
    };

    public void Dispose()
    {
        _stores.Dispose();
        Directory.Delete(_dataDir, recursive: true);
    }
}
