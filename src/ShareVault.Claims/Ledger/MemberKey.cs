using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Rules;
using ShareVault.Hardware;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// Where a passkey signs: the WebAuthn relying party id (its SHA-256 leads the authenticator data,
/// W3C WebAuthn Level 2 §6.1) and the web origin the browser writes into the client data (§5.8.1).
/// Recorded in the member's <c>member_joined</c> entry, so a verifier checks an assertion offline.
/// </summary>
public sealed record WebAuthnBinding(string RpId, string Origin);

/// <summary>
/// A member's own public key, recorded in the member's <c>member_joined</c> entry: P-256 only (ES256,
/// RFC 7518 §3.4), which a key file, a PKCS#11 token and a passkey (COSE alg -7) all give. With a
/// <see cref="WebAuthn"/> binding the key is a passkey's credential key and signs WebAuthn
/// assertions; without, it signs detached JWS (<see cref="MemberSignature"/>). The <see cref="Kid"/>
/// is the RFC 7638 thumbprint of its JWK, as for administrator keys.
/// </summary>
public sealed class MemberKey
{
    private readonly byte[] _spki;

    private MemberKey(byte[] spki, string kid, WebAuthnBinding? webAuthn, string? credentialId)
    {
        _spki = spki;
        Kid = kid;
        WebAuthn = webAuthn;
        CredentialId = credentialId;
    }

    public string Kid { get; }

    /// <summary>Set for a passkey: assertions must name this relying party and come from this origin.</summary>
    public WebAuthnBinding? WebAuthn { get; }

    /// <summary>The passkey's credential id (base64url), so a browser can be asked for this credential; null for a key file.</summary>
    public string? CredentialId { get; }

    /// <summary>The SubjectPublicKeyInfo DER (a copy).</summary>
    public byte[] SubjectPublicKeyInfo => (byte[])_spki.Clone();

    public string ToPem() => PemEncoding.WriteString("PUBLIC KEY", _spki);

    /// <summary>A key-file or PKCS#11 member key (P-256 SubjectPublicKeyInfo); <see cref="FormatException"/> when it is not one.</summary>
    public static MemberKey FromSubjectPublicKeyInfo(byte[] spki) => Create(spki, null, null);

    /// <summary>A passkey's credential key, bound to its relying party and origin.</summary>
    public static MemberKey ForPasskey(byte[] spki, WebAuthnBinding binding, string credentialId)
    {
        ArgumentNullException.ThrowIfNull(binding);
        ArgumentException.ThrowIfNullOrEmpty(credentialId);
        return Create(spki, binding, credentialId);
    }

    /// <summary>Reads a <c>PUBLIC KEY</c> PEM (a key file's public half); <see cref="FormatException"/> when it is not a P-256 key.</summary>
    public static MemberKey FromPem(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        try
        {
            var fields = PemEncoding.Find(pem);
            if (pem[fields.Label] != "PUBLIC KEY")
            {
                throw new FormatException("A member key is a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo)");
            }

            return FromSubjectPublicKeyInfo(Convert.FromBase64String(pem[fields.Base64Data]));
        }
        catch (ArgumentException e)
        {
            throw new FormatException("A member key is a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo): " + e.Message, e);
        }
    }

    /// <summary>The key's members of a <c>member_joined</c> body: <c>"key"</c> (PEM) and, for a passkey, <c>"webauthn"</c>.</summary>
    public void WriteTo(JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(body);
        body["key"] = ToPem();
        if (WebAuthn is { } binding)
        {
            body["webauthn"] = new JsonObject { ["credential_id"] = CredentialId, ["origin"] = binding.Origin, ["rp_id"] = binding.RpId };
        }
    }

    /// <summary>The key a <c>member_joined</c> body records, or null for a member without one (joined before members held keys, or by the CLI); <see cref="FormatException"/> naming the path when malformed.</summary>
    public static MemberKey? ReadFrom(JsonObject body, string path)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body["key"] is null)
        {
            return body["webauthn"] is null ? null : throw new FormatException($"{path}.webauthn without {path}.key");
        }

        var key = FromPem(JsonFields.String(body["key"], path + ".key"));
        if (body["webauthn"] is not { } node)
        {
            return key;
        }

        var w = JsonFields.Object(node, path + ".webauthn");
        return ForPasskey(key._spki, new WebAuthnBinding(JsonFields.String(w["rp_id"], path + ".webauthn.rp_id"), JsonFields.String(w["origin"], path + ".webauthn.origin")),
            JsonFields.String(w["credential_id"], path + ".webauthn.credential_id"));
    }

    /// <summary>Whether <paramref name="signature"/> (r‖s, or DER when <paramref name="der"/>) signs <paramref name="data"/> with ES256.</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, bool der = false)
    {
        try
        {
            using var ec = ECDsa.Create();
            ec.ImportSubjectPublicKeyInfo(_spki, out _);
            return ec.VerifyData(data, signature, HashAlgorithmName.SHA256, der ? DSASignatureFormat.Rfc3279DerSequence : DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public override string ToString() => WebAuthn is null ? $"member key {Kid}" : $"passkey {Kid} for {WebAuthn.RpId}";

    private static MemberKey Create(byte[] spki, WebAuthnBinding? binding, string? credentialId)
    {
        ArgumentNullException.ThrowIfNull(spki);
        using var ec = ECDsa.Create();
        try
        {
            ec.ImportSubjectPublicKeyInfo(spki, out _);
        }
        catch (CryptographicException e)
        {
            throw new FormatException("A member key is a P-256 SubjectPublicKeyInfo: " + e.Message, e);
        }

        var p = ec.ExportParameters(false);
        if (ec.KeySize != 256 || p.Curve.Oid?.Value != "1.2.840.10045.3.1.7")
        {
            throw new FormatException("A member key must be on P-256 (ES256)");
        }

        // RFC 7638 §3.2: the required EC members in lexicographic order (CanonicalJson sorts them).
        var kid = Base64Url.Encode(SHA256.HashData(CanonicalJson.Serialize(new JsonObject
        {
            ["crv"] = "P-256",
            ["kty"] = "EC",
            ["x"] = Base64Url.Encode(p.Q.X),
            ["y"] = Base64Url.Encode(p.Q.Y),
        })));
        return new MemberKey(ec.ExportSubjectPublicKeyInfo(), kid, binding, credentialId);
    }
}
