using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// JSON Canonicalization Scheme (RFC 8785) for the subset ShareVault signs and hashes: objects,
/// arrays, strings, booleans, null and integers (amounts are integer minor units, so no
/// floating-point number ever needs ECMAScript formatting). Keys are sorted by UTF-16 code units
/// (§3.2.3), no white space (§3.2.1), strings escaped as §3.2.2.2 prescribes.
/// </summary>
public static class CanonicalJson
{
    public static byte[] Serialize(JsonNode? node) => Encoding.UTF8.GetBytes(SerializeToString(node));

    public static string SerializeToString(JsonNode? node)
    {
        var text = new StringBuilder();
        Write(text, node);
        return text.ToString();
    }

    /// <summary>Parses and re-serializes, so any JSON text of the supported subset maps to its canonical form.</summary>
    public static string Canonicalize(string json) => SerializeToString(JsonNode.Parse(json));

    private static void Write(StringBuilder text, JsonNode? node)
    {
        switch (node)
        {
            case null:
                text.Append("null");
                break;
            case JsonObject obj:
                text.Append('{');
                var first = true;
                foreach (var (key, value) in obj.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (!first)
                    {
                        text.Append(',');
                    }

                    first = false;
                    WriteString(text, key);
                    text.Append(':');
                    Write(text, value);
                }

                text.Append('}');
                break;
            case JsonArray array:
                text.Append('[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        text.Append(',');
                    }

                    Write(text, array[i]);
                }

                text.Append(']');
                break;
            case JsonValue value:
                WriteValue(text, value);
                break;
            default:
                throw new ArgumentException($"Unsupported JSON node {node.GetType().Name}", nameof(node));
        }
    }

    private static void WriteValue(StringBuilder text, JsonValue value)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                WriteString(text, value.GetValue<string>());
                break;
            case JsonValueKind.True:
                text.Append("true");
                break;
            case JsonValueKind.False:
                text.Append("false");
                break;
            case JsonValueKind.Null:
                text.Append("null");
                break;
            case JsonValueKind.Number:
                // Integers only: RFC 8785 §3.2.2.3 serializes them without exponent or fraction when |n| < 2^53.
                var number = value.TryGetValue<long>(out var l) ? l
                    : value.TryGetValue<int>(out var n) ? n
                    : value.TryGetValue<JsonElement>(out var e) && e.TryGetInt64(out var el) ? el
                    : throw new ArgumentException("Canonical JSON here carries integers only (amounts in minor units)", nameof(value));
                if (Math.Abs(number) > (1L << 53))
                {
                    throw new ArgumentException("Integers beyond ±2^53 are not interoperable (RFC 8785 §3.2.2.3)", nameof(value));
                }

                text.Append(number.ToString(CultureInfo.InvariantCulture));
                break;
            default:
                throw new ArgumentException($"Unsupported JSON value kind {value.GetValueKind()}", nameof(value));
        }
    }

    /// <summary>RFC 8785 §3.2.2.2: escape '"', '\\' and control characters only; everything else as UTF-8.</summary>
    private static void WriteString(StringBuilder text, string s)
    {
        text.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                default:
                    if (c < 0x20)
                    {
                        text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        text.Append(c);
                    }

                    break;
            }
        }

        text.Append('"');
    }
}
