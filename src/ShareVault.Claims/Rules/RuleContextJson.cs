using System.Globalization;
using System.Text.Json;
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

    public static RuleContext Read(JsonObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            var places = new Dictionary<string, Place>(StringComparer.Ordinal);
            foreach (var (name, node) in json["places"]?.AsObject() ?? [])
            {
                places[name] = new Place(double.Parse(node!["lat"]!.GetValue<string>(), CultureInfo.InvariantCulture), double.Parse(node["lon"]!.GetValue<string>(), CultureInfo.InvariantCulture));
            }

            var windows = new Dictionary<string, TimeWindow>(StringComparer.Ordinal);
            foreach (var (name, node) in json["windows"]?.AsObject() ?? [])
            {
                windows[name] = new TimeWindow(
                    DateTimeOffset.Parse(node!["start"]!.GetValue<string>(), CultureInfo.InvariantCulture),
                    DateTimeOffset.Parse(node["end"]!.GetValue<string>(), CultureInfo.InvariantCulture));
            }

            return new RuleContext(places, windows);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or JsonException)
        {
            throw new FormatException("The policy's places/windows are malformed: " + e.Message, e);
        }
    }
}
