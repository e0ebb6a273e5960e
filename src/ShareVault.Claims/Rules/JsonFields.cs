using System.Text.Json.Nodes;

namespace ShareVault.Claims.Rules;

/// <summary>
/// Reads required fields of untrusted JSON (a ledger export, a policy's places and windows): a
/// missing or mistyped field is a <see cref="FormatException"/> naming its JSON path (RFC 9535
/// notation), never a null dereference.
/// </summary>
internal static class JsonFields
{
    public static JsonObject Object(JsonNode? node, string path) =>
        node as JsonObject ?? throw Problem(path, "an object");

    public static JsonArray Array(JsonNode? node, string path) =>
        node as JsonArray ?? throw Problem(path, "an array");

    public static string String(JsonNode? node, string path) =>
        node is JsonValue value && value.TryGetValue<string>(out var text) ? text : throw Problem(path, "a string");

    public static long Int64(JsonNode? node, string path) =>
        node is JsonValue value && TryInt64(value, out var number) ? number : throw Problem(path, "an integer");

    /// <summary>The elements of a required array, each a required object, with their paths.</summary>
    public static IEnumerable<(JsonObject Item, string Path)> Objects(JsonNode? node, string path) =>
        Array(node, path).Select((item, i) => (Object(item, $"{path}[{i}]"), $"{path}[{i}]"));

    /// <summary>A parsed number reads as long; one built in memory may hold an int.</summary>
    private static bool TryInt64(JsonValue value, out long number)
    {
        if (value.TryGetValue(out number))
        {
            return true;
        }

        var small = value.TryGetValue<int>(out var i);
        number = i;
        return small;
    }

    private static FormatException Problem(string path, string expected) => new($"{path} is missing or not {expected}");
}
