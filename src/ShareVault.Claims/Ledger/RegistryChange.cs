using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// The bodies of the registry-changing ledger entries exactly as the engine writes them (without the
/// <c>"admin"</c> field), so a pool administrator can build and sign one
/// (<see cref="AdminSignature.SignedBytes"/>) before the entry exists: every field is a request
/// value or derived from one, never a time or a sequence number.
/// </summary>
public static class RegistryChange
{
    /// <summary><c>pool_created</c>; <paramref name="adminKeys"/> (may be empty) become the pool's recorded administrators.</summary>
    public static JsonObject PoolCreated(string poolId, string name, string currency, string keyName, long maxPayout, string jwksSha256, IReadOnlyList<AdminKey> adminKeys)
    {
        ArgumentNullException.ThrowIfNull(adminKeys);
        var body = new JsonObject
        {
            ["pool"] = poolId,
            ["name"] = name,
            ["currency"] = currency,
            ["key"] = keyName,
            ["max_payout"] = maxPayout,
            ["jwks_sha256"] = jwksSha256,
        };
        if (adminKeys.Count > 0)
        {
            body["admin_keys"] = new JsonArray([.. adminKeys.Select(k => (JsonNode)JsonValue.Create(k.ToPem())!)]);
        }

        return body;
    }

    /// <summary><c>policy_issued</c>: <paramref name="ruleText"/> is the rule's canonical text, <paramref name="context"/> its places/windows JSON.</summary>
    public static JsonObject PolicyIssued(string policyId, string memberId, string ruleText, string ruleHash, long payoutAmount, int votesRequired, JsonObject context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new JsonObject
        {
            ["policy"] = policyId,
            ["member"] = memberId,
            ["rule"] = ruleText,
            ["rule_hash"] = ruleHash,
            ["payout_amount"] = payoutAmount,
            ["votes_required"] = votesRequired,
            ["context"] = context.DeepClone(),
        };
    }

    /// <summary>
    /// <c>premium</c>: <paramref name="reference"/> is the payment's reference (a bank or chain
    /// transaction id), unique in the pool, so an administrator's signature vouches for one payment
    /// and cannot be replayed as a second; null only in a pool without administrators.
    /// </summary>
    public static JsonObject Premium(string memberId, long amount, string? reference)
    {
        var body = new JsonObject { ["member"] = memberId, ["amount"] = amount };
        if (reference is not null)
        {
            body["ref"] = reference;
        }

        return body;
    }

    /// <summary><c>device_enrolled</c>: the device's P-256 key as the SHA-256 of its SubjectPublicKeyInfo DER.</summary>
    public static JsonObject DeviceEnrolled(string deviceId, string memberId, byte[] publicKeySpki)
    {
        ArgumentNullException.ThrowIfNull(publicKeySpki);
        return new JsonObject
        {
            ["device"] = deviceId,
            ["member"] = memberId,
            ["key_sha256"] = Convert.ToHexStringLower(SHA256.HashData(publicKeySpki)),
        };
    }

    /// <summary>
    /// <c>member_joined</c>: with <paramref name="key"/>, the member's own key (PEM, and for a passkey its
    /// relying party and origin), which signs this entry (proof of possession) and every later action of
    /// the member (<see cref="MemberSignature"/>); without, a member of an older ledger or the local CLI.
    /// </summary>
    public static JsonObject MemberJoined(string memberId, string name, MemberKey? key)
    {
        var body = new JsonObject { ["member"] = memberId, ["name"] = name };
        key?.WriteTo(body);
        return body;
    }

    /// <summary><c>policy_accepted</c>: the member accepts the policy with exactly this rule (its hash).</summary>
    public static JsonObject PolicyAccepted(string policyId, string memberId, string ruleHash) =>
        new() { ["policy"] = policyId, ["member"] = memberId, ["rule_hash"] = ruleHash };

    /// <summary><c>vote</c>: a member approves or declines a claim.</summary>
    public static JsonObject Vote(string claimId, string memberId, bool approve) =>
        new() { ["claim"] = claimId, ["member"] = memberId, ["approve"] = approve };
}
