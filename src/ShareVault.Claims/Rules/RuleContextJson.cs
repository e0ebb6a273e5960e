using System.Globalization;
using System.Text.Json.Nodes;

namespace ShareVault.Claims.Rules;

/// <summary>A policy's places and windows as JSON: {"places":{"home":{"lat":…,"lon":…}},"windows":{"trip":{"start":…,"end":…}}}.</summary>
public static class RuleContextJson
{
    public static JsonObject Write(RuleContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var places = new JsonObject();
        foreach (var (name, place) in context.Places.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            // Coordinates as strings: canonical JSON here carries no floating-point numbers.
            places[name] = new JsonObject
            {
                ["lat"] = place.Latitude.ToString("R", CultureInfo.InvariantCulture),
                ["lon"] = place.Longitude.ToString("R", CultureInfo.InvariantCulture),
            };
        }

        var windows = new JsonObject();
        foreach (var (name, window) in context.Windows.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            windows[name] = new JsonObject { ["start"] = window.Start.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture), ["end"] = window.End.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture) };
        }

        return new JsonObject { ["places"] = places, ["windows"] = windows };
    }

    /// <summary>Reads places and windows; malformed input is a <see cref="FormatException"/> that names the JSON path.</summary>
    public static RuleContext Read(JsonObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var places = new Dictionary<string, Place>(StringComparer.Ordinal);
        foreach (var (name, node) in json["places"] is null ? [] : JsonFields.Object(json["places"], "$.places"))
        {
            var path = $"$.places.{name}";
            var place = JsonFields.Object(node, path);
            places[name] = new Place(Number(place["lat"], path + ".lat"), Number(place["lon"], path + ".lon"));
        }

        var windows = new Dictionary<string, TimeWindow>(StringComparer.Ordinal);
        foreach (var (name, node) in json["windows"] is null ? [] : JsonFields.Object(json["windows"], "$.windows"))
        {
            var path = $"$.windows.{name}";
            var window = JsonFields.Object(node, path);
            windows[name] = new TimeWindow(Time(window["start"], path + ".start"), Time(window["end"], path + ".end"));
        }

        return new RuleContext(places, windows);
    }

    /// <summary>Coordinates travel as strings (canonical JSON here carries no floating-point numbers).</summary>
    private static double Number(JsonNode? node, string path) =>
        double.TryParse(JsonFields.String(node, path), NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"The policy's places/windows are malformed: {path} is not a number");

    private static DateTimeOffset Time(JsonNode? node, string path) =>
        DateTimeOffset.TryParse(JsonFields.String(node, path), CultureInfo.InvariantCulture, DateTimeStyles.None, out var value)
            ? value
            : throw new FormatException($"The policy's places/windows are malformed: {path} is not an ISO 8601 time");
}
