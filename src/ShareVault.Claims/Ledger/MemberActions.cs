using System.Data.Common;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// The engine's side of member-signed actions: the key a member recorded when joining (in the
/// <c>member_joined</c> entry, so no table holds it twice) and the check that attaches the member's
/// signature to an action's body — the same check <see cref="PoolRegistry"/> makes when it folds
/// the entry, so the engine never writes an entry the verifier or a custody node would refuse.
/// </summary>
internal static class MemberActions
{
    /// <summary>The member's recorded key, or null for a member without one (or no such member).</summary>
    public static MemberKey? Key(DbConnection connection, DbTransaction? tx, string poolId, string memberId)
    {
        foreach (var text in Sql.Query(connection, tx, "SELECT body FROM ledger WHERE pool_id=@p AND kind=@k", r => r.GetString(0), ("@p", poolId), ("@k", LedgerEntry.MemberJoined)))
        {
            if (JsonNode.Parse(text) is JsonObject body && body["member"]?.GetValue<string>() == memberId)
            {
                return MemberKey.ReadFrom(body, "$.body");
            }
        }

        return null;
    }

    /// <summary>
    /// Stores <paramref name="memberSig"/> in <paramref name="body"/> and checks it against
    /// <paramref name="key"/>: a member with a key must sign (missing or wrong: <see cref="ClaimsError.Forbidden"/>,
    /// malformed: <see cref="ClaimsError.InvalidInput"/>); a member without one may not claim to have signed.
    /// </summary>
    public static void Attach(string poolId, string kind, JsonObject body, string memberId, MemberKey? key, JsonObject? memberSig)
    {
        if (memberSig is not null)
        {
            if (!MemberSignature.IsWellFormed(memberSig))
            {
                throw new ClaimsException(ClaimsError.InvalidInput, "A member signature is {\"kid\", \"sig\": DETACHED_JWS} or {\"kid\", \"webauthn\": {\"authenticator_data\", \"client_data_json\", \"signature\"}}");
            }

            if (key is null)
            {
                throw new ClaimsException(ClaimsError.InvalidInput, $"Member '{memberId}' recorded no key when joining; their actions are not signed");
            }

            body[MemberSignature.Field] = memberSig.DeepClone();
        }

        if (key is null)
        {
            return;
        }

        var check = MemberSignature.Verify(poolId, kind, body, key);
        if (check == MemberCheck.Valid)
        {
            return;
        }

        body.Remove(MemberSignature.Field);
        throw check == MemberCheck.Malformed
            ? new ClaimsException(ClaimsError.InvalidInput, $"The member signature on this {kind} is malformed")
            : new ClaimsException(ClaimsError.Forbidden, check == MemberCheck.Missing
                ? $"Member '{memberId}' holds a key: this {kind} needs their signature over the action ({MemberSignature.Field})"
                : $"The member signature on this {kind} is not member '{memberId}''s over this action ({check})");
    }
}
