using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;


namespace ShareVault.Hardware;

/// <summary>JWS compact serialization with RS256 (RFC 7515 §7.1, RFC 7518 §3.3).</summary>
public static class Jws
{
    // Keep '+' in kids readable; the header is never embedded in HTML.
    private static readonly System.Text.Json.JsonSerializerOptions HeaderJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The JWS Signing Input: ASCII(BASE64URL(header) || '.' || BASE64URL(payload)).</summary>
    public static string SigningInput(string kid, ReadOnlySpan<byte> payload)
    {
        var header = new JsonObject { ["alg"] = "RS256", ["kid"] = kid };
        return Base64Url.Encode(Encoding.UTF8.GetBytes(header.ToJsonString(HeaderJson))) + "." + Base64Url.Encode(payload);
    }

    public static string Compact(string signingInput, ReadOnlySpan<byte> signature) => signingInput + "." + Base64Url.Encode(signature);

    /// <summary>Splits a compact JWS; false when the text is not one.</summary>
    public static bool TryParse(string text, out JwsParts parts)
    {
        parts = default;
        var segments = text.Trim().Split('.');
        if (segments.Length != 3)
        {
            return false;
        }

        try
        {
            var header = JsonNode.Parse(Base64Url.Decode(segments[0])) as JsonObject;
            if (header is null)
            {
                return false;
            }

            parts = new JwsParts(
                header["alg"]?.GetValue<string>() ?? string.Empty,
                header["kid"]?.GetValue<string>(),
                segments[0] + "." + segments[1],
                Base64Url.Decode(segments[1]),
                Base64Url.Decode(segments[2]));
            return true;
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Verifies an RS256 JWS against the key its kid names.</summary>
    public static bool Verify(JwsParts jws, RsaPublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (jws.Algorithm != "RS256")
        {
            return false;
        }

        using var rsa = key.ToRsa();
        return rsa.VerifyData(Encoding.ASCII.GetBytes(jws.SigningInput), jws.Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }
}

public readonly record struct JwsParts(string Algorithm, string? Kid, string SigningInput, byte[] Payload, byte[] Signature);
