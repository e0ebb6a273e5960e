using System.Data.Common;
using System.Text.Json.Nodes;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// The engine's side of admin-signed registry changes: the admin keys a pool records (in its
/// <c>pool_created</c> entry, so no table holds them twice) and the check that attaches an admin
/// signature to a change's body.
/// </summary>
internal static class RegistryAdmin
{
    /// <summary>The admin keys recorded for the pool (empty for an unadministered pool).</summary>
    public static IReadOnlyList<AdminKey> Keys(DbTransaction tx, string poolId)
    {
        var text = ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT body FROM ledger WHERE pool_id=@p AND seq=1", ("@p", poolId)) as string;
        if (text is null || JsonNode.Parse(text) is not JsonObject body || body["admin_keys"] is not JsonArray keys)
        {
            return [];
        }

        return [.. keys.Select(k => AdminKey.FromPem(k!.GetValue<string>()))];
    }

    /// <summary>
    /// Checks <paramref name="admin"/> (the <c>"admin"</c> value) against the pool's keys and stores it
    /// in <paramref name="body"/>. With keys, a missing or wrong signature is
    /// <see cref="ClaimsError.Forbidden"/> and a malformed one <see cref="ClaimsError.InvalidInput"/>;
    /// without keys a well-formed signature is stored unchecked (custody nodes check it against theirs).
    /// </summary>
    public static void Attach(string poolId, string kind, JsonObject body, IReadOnlyList<AdminKey> keys, JsonObject? admin)
    {
        if (admin is not null)
        {
            if (admin.Count != 2 || admin["kid"] is not JsonValue kid || !kid.TryGetValue<string>(out _) || admin["sig"] is not JsonValue sig || !sig.TryGetValue<string>(out _))
            {
                throw new ClaimsException(ClaimsError.InvalidInput, "An admin signature is {\"kid\": KID, \"sig\": DETACHED_JWS}");
            }

            body[AdminSignature.Field] = admin.DeepClone();
        }

        if (keys.Count == 0)
        {
            return;
        }

        var check = AdminSignature.Verify(poolId, kind, body, keys);
        switch (check)
        {
            case AdminCheck.Valid:
                return;
            case AdminCheck.Malformed:
                body.Remove(AdminSignature.Field);
                throw new ClaimsException(ClaimsError.InvalidInput, $"The admin signature on this {kind} is not a detached JWS naming its kid");
            default:
                body.Remove(AdminSignature.Field);
                throw new ClaimsException(ClaimsError.Forbidden, check == AdminCheck.Missing
                    ? $"Pool '{poolId}' is administered: a {kind} needs a pool administrator's signature ('sharevault admin sign')"
                    : $"The admin signature on this {kind} is not valid for pool '{poolId}' ({check})");
        }
    }
}
