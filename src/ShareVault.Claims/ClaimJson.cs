using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;

namespace ShareVault.Claims;

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

/// <summary>
/// The payout instruction a pool's threshold key signs: RFC 8785 canonical JSON with the claim,
/// member, amount (minor units), currency, pool, evidence hashes and the rule's canonical text and
/// hash. No time inside: the same claim always yields the same bytes, so re-signing after a crash
/// cannot create a second, different instruction.
/// </summary>
public static class PayoutInstruction
{
    public const string Type = "sharevault-payout/1";

    public static JsonObject Build(ClaimInfo claim, string currency)
    {
        ArgumentNullException.ThrowIfNull(claim);
        return new JsonObject
        {
            ["type"] = Type,
            ["claim"] = claim.Id,
            ["pool"] = claim.PoolId,
            ["member"] = claim.MemberId,
            ["policy"] = claim.PolicyId,
            ["device"] = claim.DeviceId,
            ["amount"] = claim.Amount,
            ["currency"] = currency,
            ["rule_hash"] = claim.RuleHash,
            ["evidence"] = new JsonArray([.. claim.Evidence.Select(e => (JsonNode)JsonValue.Create(e!["sha256"]!.GetValue<string>())!)]),
        };
    }
}
