using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;

namespace ShareVault.Custody.Publication;

/// <summary>The public face of a threshold key: its verification keys by <c>kid</c>, as JWKS or PEM.</summary>
public static class KeyPublication
{
    /// <summary>Every verification key of the record: one per quorum (product RSA) or one (Shoup).</summary>
    public static IReadOnlyList<(string Kid, RsaPublicKey Key)> PublicKeys(KeyRecord key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.Scheme switch
        {
            KeyScheme.ProductRsa => [.. key.Quorums.Select(q => (q.Kid, ProductRsaKey.CompositeKey(key, q)))],
            KeyScheme.ShoupRsa when key.Shoup is { } s =>
                [(key.Name, RsaPublicKey.FromBytes(Base64Url.Decode(s.Modulus), Base64Url.Decode(s.Exponent)))],
            _ => throw new KeyCatalogException($"Key '{key.Name}' has an unknown scheme '{key.Scheme}'"),
        };
    }

    public static IReadOnlyList<(string Kid, RsaPublicKey Key)> Select(KeyRecord key, string? kid)
    {
        var all = PublicKeys(key);
        if (kid is null)
        {
            return all;
        }

        var match = all.Where(k => k.Kid == kid).ToList();
        return match.Count > 0 ? match : throw new KeyCatalogException($"Key '{key.Name}' has no verification key '{kid}'");
    }

    /// <summary>RFC 7517 §5 JWK Set.</summary>
    public static JsonObject ToJwks(IEnumerable<(string Kid, RsaPublicKey Key)> keys) =>
        new() { ["keys"] = new JsonArray([.. keys.Select(k => (JsonNode)k.Key.ToJwk(k.Kid))]) };

    /// <summary>PEM public keys; with several, each is preceded by a "kid:" line (text outside PEM boundaries is ignored by readers, RFC 7468 §2).</summary>
    public static string ToPem(IReadOnlyList<(string Kid, RsaPublicKey Key)> keys)
    {
        if (keys.Count == 1)
        {
            return keys[0].Key.ToPem() + "\n";
        }

        var text = new StringBuilder();
        foreach (var (kid, key) in keys)
        {
            text.Append("kid: ").Append(kid).Append('\n').Append(key.ToPem()).Append('\n');
        }

        return text.ToString();
    }

    /// <summary>Verifies an RSASSA-PKCS1-v1_5 SHA-256 signature against one of the keys; returns the matching kid or null.</summary>
    public static string? VerifyRaw(IEnumerable<(string Kid, RsaPublicKey Key)> keys, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        foreach (var (kid, key) in keys)
        {
            if (key.ByteLength != signature.Length)
            {
                continue;
            }

            using var rsa = key.ToRsa();
            if (rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
            {
                return kid;
            }
        }

        return null;
    }
}
