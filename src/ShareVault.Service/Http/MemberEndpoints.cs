using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;

namespace ShareVault.Service.Http;

/// <summary>
/// Logins, invitations, joining, and the member-signed actions (policy acceptance, votes) of the
/// HTTP API. Every write checks its caller (<see cref="Roles"/>); the member's signature over the
/// action (<see cref="MemberSignature"/>) is what the ledger keeps, so a token alone cannot vote.
/// </summary>
internal static class MemberEndpoints
{
    public static void Map(WebApplication app, ClaimsHost host, MemberGate gate)
    {
        var engine = host.Engine;
        var sessions = gate.Sessions;

        // Logins: a challenge, then its answer signed by the caller's key.
        app.MapPost("/auth/challenge", (ChallengeRequest body) =>
            Results.Ok(gate.Challenge(ParseRole(body.Role), body.Pool, body.Member)));
        app.MapPost("/auth/token", async (TokenRequest body, CancellationToken ct) =>
        {
            var (token, expires, caller) = await gate.LoginAsync(body.Challenge, body.Kid, body.Signature, body.Webauthn, ct).ConfigureAwait(false);
            return Results.Ok(new { token, expiresAt = expires, role = caller.Role == CallerRole.Operator ? "operator" : "member", pool = caller.PoolId, member = caller.MemberId });
        });
        app.MapGet("/me", (HttpContext context) =>
        {
            var caller = Roles.Require(sessions, context);
            var key = caller is { Role: CallerRole.Member, PoolId: { } pool, MemberId: { } member } ? engine.MemberKeyOf(pool, member) : null;
            return Results.Ok(new
            {
                role = caller.Role == CallerRole.Operator ? "operator" : "member",
                pool = caller.PoolId,
                member = caller.MemberId,
                kid = key?.Kid,
                credentialId = key?.CredentialId,
                rpId = key?.WebAuthn?.RpId,
            });
        });

        // The canonical action a member signs, and its SHA-256 (a passkey's challenge). Computes only; stores nothing.
        app.MapPost("/actions/hash", (ActionRequest body) =>
        {
            var bytes = MemberSignature.SignedBytes(body.Pool, body.Kind, body.Body);
            return Results.Ok(new { action = System.Text.Encoding.UTF8.GetString(bytes), challenge = Base64Url.Encode(System.Security.Cryptography.SHA256.HashData(bytes)) });
        });

        // Joining: the operator invites; the member answers with a passkey or a key file and signs the join.
        app.MapPost("/pools/{id}/invitations", async (string id, InviteRequest body, HttpContext context, CancellationToken ct) =>
        {
            Roles.RequireOperator(sessions, context, id);
            _ = engine.GetPool(id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No pool '{id}'");
            var (code, expires) = await gate.InviteAsync(id, body.Member, body.Name ?? body.Member, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/invitations", new { pool = id, member = body.Member, invitation = code, expiresAt = expires });
        });
        app.MapPost("/pools/{id}/join/passkey-options", (string id, InvitationRequest body) => Results.Text(gate.PasskeyOptions(id, body.Invitation), "application/json"));
        app.MapPost("/pools/{id}/join/passkey", async (string id, PasskeyRegistration body, CancellationToken ct) =>
            Results.Ok(await gate.RegisterPasskeyAsync(id, body.Invitation, body.Attestation, ct).ConfigureAwait(false)));
        app.MapPost("/pools/{id}/join", async (string id, JoinRequest body, CancellationToken ct) =>
        {
            MemberKey? key = null;
            if (body.Key is not null)
            {
                try
                {
                    key = MemberKey.FromPem(body.Key);
                }
                catch (FormatException e)
                {
                    throw new ClaimsException(ClaimsError.InvalidInput, "key: " + e.Message, e);
                }
            }

            var joined = await gate.JoinAsync(id, body.Invitation, key, body.MemberSig, ct).ConfigureAwait(false);
            return Results.Created($"/pools/{id}/members/{joined.Member}", new { id = joined.Member, name = joined.Name });
        });

        // Member actions.
        app.MapPost("/pools/{id}/policies/{policy}/accept", async (string id, string policy, SignedAction body, HttpContext context, CancellationToken ct) =>
        {
            var owner = engine.ListPolicies(id).FirstOrDefault(p => p.Id == policy) ?? throw new ClaimsException(ClaimsError.NotFound, $"No policy '{policy}' in pool '{id}'");
            Roles.RequireMember(sessions, context, id, owner.MemberId);
            await gate.CheckActionCounterAsync(id, owner.MemberId, LedgerEntry.PolicyAccepted, RegistryChange.PolicyAccepted(policy, owner.MemberId, owner.RuleHash), body.MemberSig, ct)
                .ConfigureAwait(false);
            await engine.AcceptPolicyAsync(id, policy, owner.MemberId, body.MemberSig, ct).ConfigureAwait(false);
            return Results.Ok(new { pool = id, policy, member = owner.MemberId, accepted = true });
        });
        app.MapPost("/claims/{id}/votes", async (string id, CastVote body, HttpContext context, CancellationToken ct) =>
        {
            var claim = engine.ListClaims().FirstOrDefault(c => c.Id == id) ?? throw new ClaimsException(ClaimsError.NotFound, $"No claim '{id}'");
            var caller = Roles.Require(sessions, context);
            var member = body.Member ?? caller.MemberId ?? throw HttpAuthException.Forbidden("Only a member of the pool may vote");
            Roles.RequireMember(sessions, context, claim.PoolId, member);
            await gate.CheckActionCounterAsync(claim.PoolId, member, LedgerEntry.Vote, RegistryChange.Vote(id, member, body.Approve), body.MemberSig, ct).ConfigureAwait(false);
            return Results.Ok(new { claim = id, status = await engine.VoteAsync(id, member, body.Approve, body.MemberSig, ct).ConfigureAwait(false) });
        });
    }

    private static CallerRole ParseRole(string? role) => role switch
    {
        null or "member" => CallerRole.Member,
        "operator" => CallerRole.Operator,
        _ => throw new ClaimsException(ClaimsError.InvalidInput, "role is \"member\" or \"operator\""),
    };

    internal sealed record ChallengeRequest(string Pool, string? Member = null, string? Role = null);

    /// <summary><paramref name="Signature"/>: base64url ES256 (r‖s) or RS256 over the challenge's text; <paramref name="Webauthn"/>: {authenticatorData, clientDataJSON, signature} of a passkey assertion over its hash.</summary>
    internal sealed record TokenRequest(string Challenge, string? Kid = null, string? Signature = null, JsonObject? Webauthn = null);

    internal sealed record ActionRequest(string Pool, string Kind, JsonObject Body);

    internal sealed record InviteRequest(string Member, string? Name = null);

    internal sealed record InvitationRequest(string Invitation);

    internal sealed record PasskeyRegistration(string Invitation, JsonElement Attestation);

    internal sealed record JoinRequest(string Invitation, string? Key = null, [property: System.Text.Json.Serialization.JsonPropertyName("member_sig")] JsonObject? MemberSig = null);

    internal sealed record SignedAction([property: System.Text.Json.Serialization.JsonPropertyName("member_sig")] JsonObject? MemberSig = null);

    /// <summary><paramref name="Member"/> defaults to the caller; naming another member is 403.</summary>
    internal sealed record CastVote(bool Approve, string? Member = null, [property: System.Text.Json.Serialization.JsonPropertyName("member_sig")] JsonObject? MemberSig = null);
}
