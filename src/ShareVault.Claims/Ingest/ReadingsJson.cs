using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Evidence;

namespace ShareVault.Claims.Ingest;

/// <summary>Readings as stored beside each evidence record (for re-evaluation after a restart): [{"n","u","v","t"}].</summary>
internal static class ReadingsJson
{
    public static string Write(IReadOnlyList<Reading> readings)
    {
        var array = new JsonArray();
        foreach (var r in readings)
        {
            array.Add(new JsonObject
            {
                ["n"] = r.Name,
                ["u"] = r.Unit,
                ["v"] = r.Value,
                ["t"] = r.Time.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
            });
        }

        return array.ToJsonString();
    }

    public static IReadOnlyList<Reading> Read(string json)
    {
        var result = new List<Reading>();
        foreach (var node in JsonNode.Parse(json)!.AsArray())
        {
            result.Add(new Reading(
                node!["n"]!.GetValue<string>(),
                node["u"]?.GetValue<string>(),
                node["v"]!.GetValue<double>(),
                DateTimeOffset.Parse(node["t"]!.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind)));
        }

        return result;
    }
}
