using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Lifecycle;

namespace ShareVault.Claims.Payouts;

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

    /// <summary>The bytes the pool key signs: the instruction in RFC 8785 canonical form.</summary>
    public static byte[] Payload(ClaimInfo claim, string currency) => CanonicalJson.Serialize(Build(claim, currency));

    /// <summary>
    /// Reads signed bytes as a payout instruction: a JSON object of <see cref="Type"/> in RFC 8785
    /// canonical form (so the bytes mean exactly one instruction); null for anything else. Untrusted
    /// input: never throws.
    /// </summary>
    public static JsonObject? TryRead(byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        try
        {
            if (JsonNode.Parse(payload) is not JsonObject json || json["type"] is not JsonValue type || !type.TryGetValue<string>(out var text) || text != Type)
            {
                return null;
            }

            return CanonicalJson.SerializeToString(json) == Encoding.UTF8.GetString(payload) ? json : null;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException)
        {
            return null;
        }
    }
}
