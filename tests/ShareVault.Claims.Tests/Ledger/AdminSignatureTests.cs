using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Claims.Tests.Ledger;

[Collection(PoolKeyGroup.Name)]
public sealed class AdminSignatureTests(PoolKeyFixture key)
{
    [Fact]
    public void A_signature_verifies_only_over_the_same_pool_kind_and_body_under_the_key_its_kid_names()
    {
        using var admin = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var keys = new[] { AdminKey.FromSubjectPublicKeyInfo(admin.ExportSubjectPublicKeyInfo()) };
        var body = RegistryChange.DeviceEnrolled("dev-1", "alice", other.ExportSubjectPublicKeyInfo());
        body[AdminSignature.Field] = AdminSignature.Sign(admin, "pool-1", LedgerEntry.DeviceEnrolled, body);

        Assert.Equal(AdminCheck.Valid, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, body, keys));
        Assert.Equal(AdminCheck.BadSignature, AdminSignature.Verify("pool-2", LedgerEntry.DeviceEnrolled, body, keys));
        Assert.Equal(AdminCheck.BadSignature, AdminSignature.Verify("pool-1", LedgerEntry.PolicyIssued, body, keys));
        var changed = body.DeepClone().AsObject();
        changed["member"] = "bob";
        Assert.Equal(AdminCheck.BadSignature, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, changed, keys));
        Assert.Equal(AdminCheck.UnknownKey, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, body, [AdminKey.FromSubjectPublicKeyInfo(other.ExportSubjectPublicKeyInfo())]));
        var attached = body.DeepClone().AsObject();
        attached[AdminSignature.Field]!["sig"] = "e30.e30.AA"; // an attached JWS is not the detached form
        Assert.Equal(AdminCheck.Malformed, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, attached, keys));
        body.Remove(AdminSignature.Field);
        Assert.Equal(AdminCheck.Missing, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, body, keys));
    }

    [Fact]
    public void An_rsa_admin_key_signs_rs256_and_its_kid_is_the_rfc_7638_thumbprint()
    {
        using var rsa = RSA.Create(2048);
        var admin = AdminKey.FromPem(PemEncoding.WriteString("PUBLIC KEY", rsa.ExportSubjectPublicKeyInfo()));
        var p = rsa.ExportParameters(false);
        var jwk = $"{{\"e\":\"{ShareVault.Hardware.Base64Url.Encode(p.Exponent)}\",\"kty\":\"RSA\",\"n\":\"{ShareVault.Hardware.Base64Url.Encode(p.Modulus)}\"}}";
        Assert.Equal(ShareVault.Hardware.Base64Url.Encode(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(jwk))), admin.Kid);
        var body = new JsonObject { ["device"] = "dev-1", ["member"] = "alice", ["key_sha256"] = new string('0', 64) };
        body[AdminSignature.Field] = AdminSignature.Sign(rsa, "pool-1", LedgerEntry.DeviceEnrolled, body);
        Assert.Equal(AdminCheck.Valid, AdminSignature.Verify("pool-1", LedgerEntry.DeviceEnrolled, body, [admin]));
    }

    [Fact]
    public async Task An_administered_pool_refuses_a_policy_device_or_premium_without_a_valid_admin_signature()
    {
        using var admin = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var impostor = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var keys = new[] { AdminKey.FromSubjectPublicKeyInfo(admin.ExportSubjectPublicKeyInfo()) };
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        var poolBody = engine.PoolBody("pool-1", "Riverside", "EUR", key.KeyName, 50_000, keys);
        var unsignedPool = await Assert.ThrowsAsync<ClaimsException>(() => engine.CreatePoolAsync("pool-1", "Riverside", "EUR", key.KeyName, 50_000, keys, null, default));
        Assert.Equal(ClaimsError.Forbidden, unsignedPool.Error);
        await engine.CreatePoolAsync("pool-1", "Riverside", "EUR", key.KeyName, 50_000, keys, AdminSignature.Sign(admin, "pool-1", LedgerEntry.PoolCreated, poolBody), default);
        await engine.AddMemberAsync("pool-1", "alice", "Alice", default);

        var policy = ClaimsEngine.PolicyBody("pol-1", "alice", "water_leak == 1 for 10m", 25_000, 0, null);
        Task Issue(JsonObject? signature) => engine.IssuePolicyAsync("pool-1", "alice", "pol-1", "water_leak == 1 for 10m", 25_000, 0, null, signature, default);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => Issue(null))).Error);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => Issue(AdminSignature.Sign(impostor, "pool-1", LedgerEntry.PolicyIssued, policy)))).Error);
        Assert.Equal(ClaimsError.InvalidInput, (await Assert.ThrowsAsync<ClaimsException>(() => Issue(new JsonObject { ["kid"] = keys[0].Kid, ["sig"] = "not a jws" }))).Error);
        await Issue(AdminSignature.Sign(admin, "pool-1", LedgerEntry.PolicyIssued, policy));

        using var device = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = device.ExportSubjectPublicKeyInfo();
        var wrongBody = AdminSignature.Sign(admin, "pool-1", LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled("dev-2", "alice", spki));
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.EnrollDeviceAsync("pool-1", "alice", "dev-1", spki, wrongBody, default))).Error);
        await engine.EnrollDeviceAsync("pool-1", "alice", "dev-1", spki, AdminSignature.Sign(admin, "pool-1", LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled("dev-1", "alice", spki)), default);

        // A premium raises the balance a node pays against: it needs a payment reference and the admin's signature, once per reference.
        JsonObject Premium(long amount, string reference) => AdminSignature.Sign(admin, "pool-1", LedgerEntry.Premium, RegistryChange.Premium("alice", amount, reference));
        Assert.Equal(ClaimsError.InvalidInput, (await Assert.ThrowsAsync<ClaimsException>(() => engine.RecordPremiumAsync("pool-1", "alice", 30_000, default))).Error);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.RecordPremiumAsync("pool-1", "alice", 30_000, "pay-1", null, default))).Error);
        Assert.Equal(ClaimsError.Forbidden, (await Assert.ThrowsAsync<ClaimsException>(() => engine.RecordPremiumAsync("pool-1", "alice", 90_000, "pay-1", Premium(30_000, "pay-1"), default))).Error);
        await engine.RecordPremiumAsync("pool-1", "alice", 30_000, "pay-1", Premium(30_000, "pay-1"), default);
        Assert.Equal(ClaimsError.AlreadyExists, (await Assert.ThrowsAsync<ClaimsException>(() => engine.RecordPremiumAsync("pool-1", "alice", 30_000, "pay-1", Premium(30_000, "pay-1"), default))).Error);

        // What the engine wrote folds under the pool's own recorded keys, and under the node's configured key.
        var entries = engine.LedgerEntries("pool-1");
        Assert.Null(PoolRegistry.Fold("pool-1", entries).Refused);
        Assert.Null(PoolRegistry.Fold("pool-1", entries, keys).Refused);
        Assert.Equal(RegistryRefusal.NotAdminSigned, PoolRegistry.Fold("pool-1", entries, [AdminKey.FromSubjectPublicKeyInfo(impostor.ExportSubjectPublicKeyInfo())]).Refused!.Refusal);
    }

    [Fact]
    public async Task A_pool_without_admin_keys_keeps_working_unsigned()
    {
        using var db = ClaimsDatabase.Open(key.NewDatabasePath());
        using var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System);
        await Claims.ClaimsFlowContract.SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
        var entries = engine.LedgerEntries("pool-1");
        Assert.DoesNotContain(entries, e => e.Body.ContainsKey(AdminSignature.Field));
        Assert.Null(PoolRegistry.Fold("pool-1", entries).Refused);
    }
}
