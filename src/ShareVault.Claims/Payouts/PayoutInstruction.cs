using System.Text.Json.Nodes;
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
}
