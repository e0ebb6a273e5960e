using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Hardware;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// A pool administrator's public key: P-256 (ES256, RFC 7518 §3.4) or RSA (RS256, §3.3), read from
/// an SPKI PEM. Its <see cref="Kid"/> is the RFC 7638 JWK thumbprint (base64url SHA-256 of the
/// canonical JWK members), so every party derives the same kid from the key alone.
/// </summary>
public sealed class AdminKey
{
    private readonly byte[] _spki;

    private AdminKey(byte[] spki, string algorithm, string kid)
    {
        _spki = spki;
        Algorithm = algorithm;
        Kid = kid;
    }

    /// <summary>"ES256" or "RS256".</summary>
    public string Algorithm { get; }

    public string Kid { get; }

    /// <summary>The SubjectPublicKeyInfo DER (a copy).</summary>
    public byte[] SubjectPublicKeyInfo => (byte[])_spki.Clone();

    public string ToPem() => PemEncoding.WriteString("PUBLIC KEY", _spki);

    /// <summary>Reads a <c>PUBLIC KEY</c> PEM; <see cref="FormatException"/> when it is not a P-256 or RSA (≥ 2048 bits) key.</summary>
    public static AdminKey FromPem(string pem)
    {
        ArgumentNullException.ThrowIfNull(pem);
        byte[] spki;
        try
        {
            var fields = PemEncoding.Find(pem);
            if (pem[fields.Label] != "PUBLIC KEY")
            {
                throw new FormatException("An admin key is a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo)");
            }

            spki = Convert.FromBase64String(pem[fields.Base64Data]);
        }
        catch (ArgumentException e)
        {
            throw new FormatException("An admin key is a PEM 'PUBLIC KEY' (SubjectPublicKeyInfo): " + e.Message, e);
        }

        return FromSubjectPublicKeyInfo(spki);
    }

    /// <summary>Reads SubjectPublicKeyInfo DER; <see cref="FormatException"/> when it is not a P-256 or RSA (≥ 2048 bits) key.</summary>
    public static AdminKey FromSubjectPublicKeyInfo(byte[] spki)
    {
        ArgumentNullException.ThrowIfNull(spki);
        try
        {
            using (var ec = ECDsa.Create())
            {
                try
                {
                    ec.ImportSubjectPublicKeyInfo(spki, out _);
                    var p = ec.ExportParameters(false);
                    if (ec.KeySize != 256 || p.Curve.Oid?.Value != "1.2.840.10045.3.1.7")
                    {
                        throw new FormatException("An EC admin key must be on P-256 (ES256)");
                    }

                    return new AdminKey((byte[])spki.Clone(), "ES256", Thumbprint(new JsonObject
                    {
                        ["crv"] = "P-256",
                        ["kty"] = "EC",
                        ["x"] = Base64Url.Encode(p.Q.X),
                        ["y"] = Base64Url.Encode(p.Q.Y),
                    }));
                }
                catch (CryptographicException)
                {
                    // not an EC key: try RSA below
                }
            }

            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(spki, out _);
            if (rsa.KeySize < 2048)
            {
                throw new FormatException($"An RSA admin key needs at least 2048 bits (this one has {rsa.KeySize})");
            }

            var r = rsa.ExportParameters(false);
            return new AdminKey((byte[])spki.Clone(), "RS256", Thumbprint(new JsonObject
            {
                ["e"] = Base64Url.Encode(r.Exponent),
                ["kty"] = "RSA",
                ["n"] = Base64Url.Encode(r.Modulus),
            }));
        }
        catch (CryptographicException e)
        {
            throw new FormatException("The admin key is neither a P-256 nor an RSA SubjectPublicKeyInfo: " + e.Message, e);
        }
    }

    /// <summary>Whether <paramref name="signature"/> (r‖s for ES256, PKCS#1 v1.5 for RS256) signs <paramref name="data"/>.</summary>
    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            if (Algorithm == "ES256")
            {
                using var ec = ECDsa.Create();
                ec.ImportSubjectPublicKeyInfo(_spki, out _);
                return ec.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            }

            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(_spki, out _);
            return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public override string ToString() => $"{Algorithm} admin key {Kid}";

    // RFC 7638 §3: the required members in lexicographic order, no white space (CanonicalJson sorts them).
    private static string Thumbprint(JsonObject jwk) => Base64Url.Encode(SHA256.HashData(CanonicalJson.Serialize(jwk)));
}

/// <summary>What checking a registry change's admin signature found.</summary>
public enum AdminCheck
{
    /// <summary>Signed by one of the given keys over exactly this pool, kind and body.</summary>
    Valid,

    /// <summary>The body carries no <c>"admin"</c> field.</summary>
    Missing,

    /// <summary>The <c>"admin"</c> field is not <c>{"kid","sig"}</c> with a detached JWS whose header names the same kid.</summary>
    Malformed,

    /// <summary>The kid names none of the given keys.</summary>
    UnknownKey,

    /// <summary>The signature does not verify under the key its kid names.</summary>
    BadSignature,
}

/// <summary>
/// The pool administrator's signature on a registry change (<c>pool_created</c>,
/// <c>policy_issued</c>, <c>device_enrolled</c>), carried in the entry body as
/// <c>"admin": {"kid": KID, "sig": DETACHED_JWS}</c>. The JWS (RFC 7515 App. F: payload omitted,
/// <c>header..signature</c>) signs the RFC 8785 canonical JSON
/// <c>{"body": BODY_WITHOUT_ADMIN, "kind": KIND, "pool": POOL}</c>: deterministic fields only (no
/// time, no sequence number), so the administrator signs before the entry exists and the same
/// change always has the same signed bytes.
/// </summary>
public static class AdminSignature
{
    public const string Field = "admin";

    /// <summary>The ledger kinds that change a pool's registry and so need an admin signature.</summary>
    public static bool IsRegistryChange(string kind) =>
        kind is LedgerEntry.PoolCreated or LedgerEntry.PolicyIssued or LedgerEntry.DeviceEnrolled or LedgerEntry.Premium or LedgerEntry.PayoutAddress or LedgerEntry.Treasury;

    /// <summary>The bytes the administrator signs (the JWS payload).</summary>
    public static byte[] SignedBytes(string pool, string kind, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(body);
        var unsigned = body.DeepClone().AsObject();
        unsigned.Remove(Field);
        return CanonicalJson.Serialize(new JsonObject { ["body"] = unsigned, ["kind"] = kind, ["pool"] = pool });
    }

    /// <summary>Signs a change with a P-256 key (a PKCS#11 token's key through <see cref="HardwareECDsa"/>, or software); returns the <c>"admin"</c> value.</summary>
    public static JsonObject Sign(ECDsa key, string pool, string kind, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(key);
        return SignCore("ES256", key.ExportSubjectPublicKeyInfo(), input => key.SignData(input, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation), pool, kind, body);
    }

    /// <summary>Signs a change with an RSA key (RS256).</summary>
    public static JsonObject Sign(RSA key, string pool, string kind, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(key);
        return SignCore("RS256", key.ExportSubjectPublicKeyInfo(), input => key.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1), pool, kind, body);
    }

    // A detached JWS (RFC 7515 Appendix F): the payload, SignedBytes, is left out of the "sig" text.
    private static JsonObject SignCore(string alg, byte[] spki, Func<byte[], byte[]> sign, string pool, string kind, JsonObject body)
    {
        var kid = AdminKey.FromSubjectPublicKeyInfo(spki).Kid;
        var header = Base64Url.Encode(Encoding.UTF8.GetBytes(new JsonObject { ["alg"] = alg, ["kid"] = kid }.ToJsonString()));
        var signature = sign(Encoding.ASCII.GetBytes(header + "." + Base64Url.Encode(SignedBytes(pool, kind, body))));
        return new JsonObject { ["kid"] = kid, ["sig"] = header + ".." + Base64Url.Encode(signature) };
    }

    /// <summary>Checks the body's <c>"admin"</c> field against <paramref name="keys"/>; untrusted input, so never throws for bad content.</summary>
    public static AdminCheck Verify(string pool, string kind, JsonObject body, IEnumerable<AdminKey> keys) =>
        Verify(pool, kind, body, keys, out _);

    /// <summary>As above, and names the key that signed (null unless valid).</summary>
    public static AdminCheck Verify(string pool, string kind, JsonObject body, IEnumerable<AdminKey> keys, out AdminKey? signer)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(keys);
        signer = null;
        if (!body.TryGetPropertyValue(Field, out var node) || node is null)
        {
            return AdminCheck.Missing;
        }

        if (node is not JsonObject admin || Text(admin["kid"]) is not { } kid || Text(admin["sig"]) is not { } sig)
        {
            return AdminCheck.Malformed;
        }

        var parts = sig.Split('.');
        if (parts.Length != 3 || parts[1].Length != 0)
        {
            return AdminCheck.Malformed; // not detached (RFC 7515 App. F)
        }

        string? alg, headerKid;
        byte[] signature;
        try
        {
            var header = JsonNode.Parse(Base64Url.Decode(parts[0])) as JsonObject;
            alg = Text(header?["alg"]);
            headerKid = Text(header?["kid"]);
            signature = Base64Url.Decode(parts[2]);
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            return AdminCheck.Malformed;
        }

        if (headerKid != kid || alg is null)
        {
            return AdminCheck.Malformed;
        }

        var key = keys.FirstOrDefault(k => k.Kid == kid);
        if (key is null)
        {
            return AdminCheck.UnknownKey;
        }

        byte[] signed;
        try
        {
            signed = SignedBytes(pool, kind, body);
        }
        catch (ArgumentException)
        {
            return AdminCheck.Malformed; // a body canonical JSON cannot carry (a fraction, a huge number)
        }

        var input = Encoding.ASCII.GetBytes(parts[0] + "." + Base64Url.Encode(signed));
        if (alg != key.Algorithm || !key.Verify(input, signature))
        {
            return AdminCheck.BadSignature;
        }

        signer = key;
        return AdminCheck.Valid;
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
