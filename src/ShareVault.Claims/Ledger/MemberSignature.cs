using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Hardware;

namespace ShareVault.Claims.Ledger;

/// <summary>What checking a member's signature on an action found.</summary>
public enum MemberCheck
{
    /// <summary>Signed by the member's recorded key over exactly this pool, kind and body.</summary>
    Valid,

    /// <summary>The body carries no <c>"member_sig"</c>.</summary>
    Missing,

    /// <summary>The <c>"member_sig"</c> is neither form below, or its parts do not decode.</summary>
    Malformed,

    /// <summary>Its kid is not the member's key.</summary>
    WrongKey,

    /// <summary>The signature (or, for a passkey, its client data or authenticator data) does not verify for this action.</summary>
    BadSignature,
}

/// <summary>
/// A member's own signature on an action that changes a decision (joining, accepting a policy,
/// enrolling a device, a vote), carried in the entry body as <c>"member_sig"</c>. The signed action
/// is the RFC 8785 canonical JSON <c>{"body": BODY, "kind": KIND, "pool": POOL}</c> with the body's
/// <c>"admin"</c> and <c>"member_sig"</c> removed: deterministic fields only, so the member signs
/// before the entry exists (as for <see cref="AdminSignature"/>, which signs over a member_sig in turn).
/// Two forms:
/// <list type="bullet">
/// <item>key file or PKCS#11 key: <c>{"kid": KID, "sig": DETACHED_JWS}</c>, ES256 over the action
/// (RFC 7515 App. F, header <c>{"alg":"ES256","kid":KID}</c>);</item>
/// <item>passkey: <c>{"kid": KID, "webauthn": {"authenticator_data", "client_data_json", "signature"}}</c>
/// (base64url), a WebAuthn assertion whose client data challenge is the action's SHA-256
/// (<see cref="ActionHash"/>), checked as W3C WebAuthn Level 2 §7.2 steps 11-20 prescribe
/// (<see cref="WebAuthnAssertion"/>).</item>
/// </list>
/// </summary>
public static class MemberSignature
{
    public const string Field = "member_sig";

    /// <summary>The canonical action a member signs.</summary>
    public static byte[] SignedBytes(string pool, string kind, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(body);
        var unsigned = body.DeepClone().AsObject();
        unsigned.Remove(Field);
        unsigned.Remove(AdminSignature.Field);
        return CanonicalJson.Serialize(new JsonObject { ["body"] = unsigned, ["kind"] = kind, ["pool"] = pool });
    }

    /// <summary>SHA-256 of <see cref="SignedBytes"/>: the challenge a passkey signs for this action.</summary>
    public static byte[] ActionHash(string pool, string kind, JsonObject body) => SHA256.HashData(SignedBytes(pool, kind, body));

    /// <summary>Signs an action with a P-256 key file or PKCS#11 key (<see cref="HardwareECDsa"/>); returns the <c>"member_sig"</c> value.</summary>
    public static JsonObject Sign(ECDsa key, string pool, string kind, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(key);
        var kid = MemberKey.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo()).Kid;
        var header = Base64Url.Encode(Encoding.UTF8.GetBytes(new JsonObject { ["alg"] = "ES256", ["kid"] = kid }.ToJsonString()));
        var signature = key.SignData(Encoding.ASCII.GetBytes(header + "." + Base64Url.Encode(SignedBytes(pool, kind, body))), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return new JsonObject { ["kid"] = kid, ["sig"] = header + ".." + Base64Url.Encode(signature) };
    }

    /// <summary>The <c>"member_sig"</c> value of a passkey assertion over this action.</summary>
    public static JsonObject FromAssertion(string kid, byte[] authenticatorData, byte[] clientDataJson, byte[] signature) => new()
    {
        ["kid"] = kid,
        ["webauthn"] = new JsonObject
        {
            ["authenticator_data"] = Base64Url.Encode(authenticatorData),
            ["client_data_json"] = Base64Url.Encode(clientDataJson),
            ["signature"] = Base64Url.Encode(signature),
        },
    };

    /// <summary>Whether a <c>"member_sig"</c> value has one of the two shapes (before any key is known).</summary>
    public static bool IsWellFormed(JsonObject sig)
    {
        ArgumentNullException.ThrowIfNull(sig);
        return Text(sig["kid"]) is not null && sig.Count == 2
            && (Text(sig["sig"]) is not null
                || (sig["webauthn"] is JsonObject w && w.Count == 3 && Text(w["authenticator_data"]) is not null && Text(w["client_data_json"]) is not null && Text(w["signature"]) is not null));
    }

    /// <summary>Checks the body's <c>"member_sig"</c> against the member's key; untrusted input, so never throws for bad content.</summary>
    public static MemberCheck Verify(string pool, string kind, JsonObject body, MemberKey key)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(key);
        if (!body.TryGetPropertyValue(Field, out var node) || node is null)
        {
            return MemberCheck.Missing;
        }

        if (node is not JsonObject sig || !IsWellFormed(sig))
        {
            return MemberCheck.Malformed;
        }

        if (Text(sig["kid"]) != key.Kid)
        {
            return MemberCheck.WrongKey;
        }

        byte[] signed;
        try
        {
            signed = SignedBytes(pool, kind, body);
        }
        catch (ArgumentException)
        {
            return MemberCheck.Malformed; // a body canonical JSON cannot carry
        }

        return sig["webauthn"] is JsonObject assertion ? VerifyAssertion(assertion, key, signed) : VerifyJws(Text(sig["sig"])!, key, signed);
    }

    private static MemberCheck VerifyJws(string jws, MemberKey key, byte[] signed)
    {
        var parts = jws.Split('.');
        if (parts.Length != 3 || parts[1].Length != 0)
        {
            return MemberCheck.Malformed; // not detached (RFC 7515 App. F)
        }

        try
        {
            var header = JsonNode.Parse(Base64Url.Decode(parts[0])) as JsonObject;
            if (Text(header?["alg"]) != "ES256" || Text(header?["kid"]) != key.Kid)
            {
                return MemberCheck.Malformed;
            }

            var input = Encoding.ASCII.GetBytes(parts[0] + "." + Base64Url.Encode(signed));
            return key.WebAuthn is null && key.Verify(input, Base64Url.Decode(parts[2])) ? MemberCheck.Valid : MemberCheck.BadSignature;
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            return MemberCheck.Malformed;
        }
    }

    private static MemberCheck VerifyAssertion(JsonObject assertion, MemberKey key, byte[] signed)
    {
        byte[] authenticatorData, clientData, signature;
        try
        {
            authenticatorData = Base64Url.Decode(Text(assertion["authenticator_data"])!);
            clientData = Base64Url.Decode(Text(assertion["client_data_json"])!);
            signature = Base64Url.Decode(Text(assertion["signature"])!);
        }
        catch (FormatException)
        {
            return MemberCheck.Malformed;
        }

        return WebAuthnAssertion.Verify(key, SHA256.HashData(signed), authenticatorData, clientData, signature) is null ? MemberCheck.Valid : MemberCheck.BadSignature;
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}

/// <summary>
/// The relying party's check of a WebAuthn assertion (W3C WebAuthn Level 2 §7.2), with nothing but
/// the member's recorded key: used for passkey logins and, offline, for passkey-signed ledger entries.
/// The signature counter is not checked: synced passkeys report 0 (§6.1.1), and an offline verifier
/// sees each assertion alone.
/// </summary>
public static class WebAuthnAssertion
{
    /// <summary>Null when valid, else what is wrong (no secrets: names of fields only).</summary>
    public static string? Verify(MemberKey key, ReadOnlySpan<byte> challenge, byte[] authenticatorData, byte[] clientDataJson, byte[] signature)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(authenticatorData);
        ArgumentNullException.ThrowIfNull(clientDataJson);
        ArgumentNullException.ThrowIfNull(signature);
        if (key.WebAuthn is not { } binding)
        {
            return "the member's key is not a passkey";
        }

        // §7.2 steps 11-14: the client data is JSON of type webauthn.get, naming our challenge and origin.
        JsonObject? client;
        try
        {
            client = JsonNode.Parse(clientDataJson) as JsonObject;
        }
        catch (System.Text.Json.JsonException)
        {
            return "the client data is not JSON";
        }

        if (client?["type"] is not JsonValue type || !type.TryGetValue<string>(out var typeText) || typeText != "webauthn.get")
        {
            return "the client data is not of type webauthn.get";
        }

        if (client["challenge"] is not JsonValue c || !c.TryGetValue<string>(out var challengeText) || challengeText != Base64Url.Encode(challenge))
        {
            return "the client data's challenge is not this action's";
        }

        if (client["origin"] is not JsonValue o || !o.TryGetValue<string>(out var origin) || origin != binding.Origin)
        {
            return "the client data's origin is not the member's";
        }

        if (client["crossOrigin"] is JsonValue cross && cross.TryGetValue<bool>(out var isCross) && isCross)
        {
            return "the assertion was made in a cross-origin frame";
        }

        // §7.2 steps 15-17 and §6.1: rpIdHash (32 octets), flags (UP = bit 0), signCount (4 octets).
        if (authenticatorData.Length < 37)
        {
            return "the authenticator data is shorter than 37 octets";
        }

        if (!CryptographicOperations.FixedTimeEquals(authenticatorData.AsSpan(0, 32), SHA256.HashData(Encoding.UTF8.GetBytes(binding.RpId))))
        {
            return "the authenticator data names another relying party";
        }

        if ((authenticatorData[32] & 0x01) == 0)
        {
            return "the user was not present (UP flag clear)";
        }

        // §7.2 steps 19-20: the signature is ES256 (ASN.1 DER, §6.5.5) over authenticatorData ‖ SHA-256(clientDataJSON).
        var signed = new byte[authenticatorData.Length + 32];
        authenticatorData.CopyTo(signed, 0);
        SHA256.HashData(clientDataJson).CopyTo(signed, authenticatorData.Length);
        return key.Verify(signed, signature, der: true) ? null : "the signature does not verify under the member's passkey";
    }
}
