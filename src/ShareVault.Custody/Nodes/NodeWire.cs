using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Hardware;

namespace ShareVault.Custody.Nodes;

/// <summary>
/// The JSON of the custody-node API (<c>/v1</c>), shared by the node and its client: field names,
/// and RSA public keys and big integers as base64url big-endian (RFC 7518 §6.3.1 style).
/// </summary>
public static class NodeWire
{
    public const string Refused = "refused";
    public const string Detail = "detail";
    public const string Error = "error";
    public const string Head = "head";
    public const string Partial = "partial";
    public const string Custodian = "custodian";

    public static JsonObject Key(RsaPublicKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new JsonObject { ["n"] = Base64Url.Encode(BigEndian.ToBytes(key.Modulus)), ["e"] = Base64Url.Encode(BigEndian.ToBytes(key.Exponent)) };
    }

    /// <summary>An RSA public key from <c>{"n","e"}</c>; null when the node is not of that shape.</summary>
    public static RsaPublicKey? TryKey(JsonNode? node)
    {
        try
        {
            return node is JsonObject o && o["n"] is JsonValue n && o["e"] is JsonValue e
                ? RsaPublicKey.FromBytes(Base64Url.Decode(n.GetValue<string>()), Base64Url.Decode(e.GetValue<string>()))
                : null;
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    public static string Big(BigInteger value) => Base64Url.Encode(BigEndian.ToBytes(value));

    /// <summary>A non-negative integer from base64url; null when it is not one.</summary>
    public static BigInteger? TryInteger(JsonNode? node)
    {
        try
        {
            return node is JsonValue v && v.TryGetValue<string>(out var text) ? BigEndian.ToInteger(Base64Url.Decode(text)) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public static byte[]? TryBytes(JsonNode? node)
    {
        try
        {
            return node is JsonValue v && v.TryGetValue<string>(out var text) ? Base64Url.Decode(text) : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    public static string? TryString(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    public static long? TryLong(JsonNode? node) => node is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;
}
