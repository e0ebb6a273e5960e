using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;

namespace ShareVault.Claims.Tests.Ledger;

/// <summary>
/// Member signatures checked offline: a key file's detached JWS, and a passkey's WebAuthn assertion
/// (W3C WebAuthn Level 2 §7.2) made here as an authenticator makes it, then spoiled one field at a time.
/// </summary>
public sealed class MemberSignatureTests
{
    private const string Origin = "https://pool.example";
    private static readonly JsonObject Vote = RegistryChange.Vote("clm-1", "bob", approve: true);

    [Fact]
    public void A_key_file_signature_verifies_only_over_the_same_pool_kind_and_body_under_the_members_key()
    {
        using var bob = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var carol = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = MemberKey.FromSubjectPublicKeyInfo(bob.ExportSubjectPublicKeyInfo());
        var body = Vote.DeepClone().AsObject();
        body[MemberSignature.Field] = MemberSignature.Sign(bob, "pool-1", LedgerEntry.Vote, body);
        Assert.Equal(MemberCheck.Valid, MemberSignature.Verify("pool-1", LedgerEntry.Vote, body, key));
        Assert.Equal(MemberCheck.BadSignature, MemberSignature.Verify("pool-2", LedgerEntry.Vote, body, key));
        var flipped = body.DeepClone().AsObject();
        flipped["approve"] = false;
        Assert.Equal(MemberCheck.BadSignature, MemberSignature.Verify("pool-1", LedgerEntry.Vote, flipped, key));
        Assert.Equal(MemberCheck.WrongKey, MemberSignature.Verify("pool-1", LedgerEntry.Vote, body, MemberKey.FromSubjectPublicKeyInfo(carol.ExportSubjectPublicKeyInfo())));
        body.Remove(MemberSignature.Field);
        Assert.Equal(MemberCheck.Missing, MemberSignature.Verify("pool-1", LedgerEntry.Vote, body, key));
        body[MemberSignature.Field] = new JsonObject { ["kid"] = key.Kid, ["sig"] = "not-a-jws" };
        Assert.Equal(MemberCheck.Malformed, MemberSignature.Verify("pool-1", LedgerEntry.Vote, body, key));
    }

    [Fact]
    public void A_passkey_assertion_over_the_actions_hash_verifies_and_each_spoiled_field_is_refused()
    {
        using var passkey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = MemberKey.ForPasskey(passkey.ExportSubjectPublicKeyInfo(), new WebAuthnBinding("pool.example", Origin), "Y3JlZA");
        var challenge = MemberSignature.ActionHash("pool-1", LedgerEntry.Vote, Vote);
        JsonObject Signed(string type = "webauthn.get", string origin = Origin, string rpId = "pool.example", byte flags = 0x05, byte[]? over = null, bool crossOrigin = false)
        {
            var body = Vote.DeepClone().AsObject();
            var clientData = Encoding.UTF8.GetBytes(new JsonObject { ["type"] = type, ["challenge"] = Base64Url.Encode(over ?? challenge), ["origin"] = origin, ["crossOrigin"] = crossOrigin }.ToJsonString());
            var authData = new byte[37];
            SHA256.HashData(Encoding.UTF8.GetBytes(rpId)).CopyTo(authData, 0);
            authData[32] = flags;
            var signature = passkey.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            body[MemberSignature.Field] = MemberSignature.FromAssertion(key.Kid, authData, clientData, signature);
            return body;
        }

        MemberCheck Check(JsonObject body) => MemberSignature.Verify("pool-1", LedgerEntry.Vote, body, key);
        Assert.Equal(MemberCheck.Valid, Check(Signed()));
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(type: "webauthn.create")));
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(origin: "https://evil.example")));
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(rpId: "evil.example")));
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(flags: 0x04))); // user not present
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(over: SHA256.HashData("another action"u8))));
        Assert.Equal(MemberCheck.BadSignature, Check(Signed(crossOrigin: true)));
        var declined = Signed();
        declined["approve"] = false; // the assertion was over the approval
        Assert.Equal(MemberCheck.BadSignature, Check(declined));

        // A passkey never signs a key-file JWS, and a key file's JWS is not a passkey's assertion.
        var jws = Vote.DeepClone().AsObject();
        jws[MemberSignature.Field] = MemberSignature.Sign(passkey, "pool-1", LedgerEntry.Vote, jws);
        Assert.Equal(MemberCheck.BadSignature, Check(jws));
    }

    [Fact]
    public void A_member_key_round_trips_through_its_member_joined_body()
    {
        using var passkey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = MemberKey.ForPasskey(passkey.ExportSubjectPublicKeyInfo(), new WebAuthnBinding("localhost", "http://localhost:8080"), "Y3JlZA");
        var body = RegistryChange.MemberJoined("dave", "Dave", key);
        var read = MemberKey.ReadFrom(body, "$.body")!;
        Assert.Equal(key.Kid, read.Kid);
        Assert.Equal(key.WebAuthn, read.WebAuthn);
        Assert.Equal("Y3JlZA", read.CredentialId);
        Assert.Null(MemberKey.ReadFrom(RegistryChange.MemberJoined("erin", "Erin", null), "$.body"));
        using var rsa = RSA.Create(2048);
        Assert.Throws<FormatException>(() => MemberKey.FromSubjectPublicKeyInfo(rsa.ExportSubjectPublicKeyInfo()));
    }
}
