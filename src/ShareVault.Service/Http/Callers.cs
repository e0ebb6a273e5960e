using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using ShareVault.Claims.Pools;
using ShareVault.Hardware;

namespace ShareVault.Service.Http;

/// <summary>Who a request acts as.</summary>
internal enum CallerRole
{
    /// <summary>The pool operator: a key of <see cref="ServiceOptions.OperatorKeys"/> (every pool) or an admin key a pool records (that pool).</summary>
    Operator,

    /// <summary>A pool member, with the key (key file, PKCS#11 or passkey) they recorded when joining.</summary>
    Member,
}

/// <summary>An authenticated caller: an operator of one pool (or, with a null pool, of all), or one member of one pool.</summary>
internal sealed record Caller(CallerRole Role, string? PoolId, string? MemberId)
{
    public bool Operates(string poolId) => Role == CallerRole.Operator && (PoolId is null || PoolId == poolId);

    public bool Is(string poolId, string memberId) => Role == CallerRole.Member && PoolId == poolId && MemberId == memberId;

    public override string ToString() => Role == CallerRole.Operator ? $"operator of {PoolId ?? "every pool"}" : $"member '{MemberId}' of '{PoolId}'";
}

/// <summary>401 (who are you?) or 403 (not you), answered as problem details by <see cref="HttpApi.ProblemFor"/>.</summary>
internal sealed class HttpAuthException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Title => Status == StatusCodes.Status401Unauthorized ? "Authentication required" : "Forbidden";

    public static HttpAuthException Unauthenticated(string message) => new(StatusCodes.Status401Unauthorized, message);

    public static HttpAuthException Forbidden(string message) => new(StatusCodes.Status403Forbidden, message);
}

/// <summary>
/// Short-lived bearer tokens handed out by <c>POST /auth/token</c> after a challenge-response. A token
/// is 32 random octets (base64url); only its SHA-256 is kept, in the claims database
/// (<see cref="MemberAccess"/>), so a restart keeps everyone logged in and a token never reaches a
/// log line or a database dump. Lifetime 15 minutes (a member re-signs a challenge after).
/// </summary>
internal sealed class SessionBook(MemberAccess store, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(15);

    public async Task<(string Token, DateTimeOffset Expires)> OpenAsync(Caller caller, CancellationToken cancellationToken)
    {
        var token = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        var expires = now + Lifetime;
        var role = caller.Role == CallerRole.Operator ? "operator" : "member";
        await store.OpenSessionAsync(Key(token), new SessionRecord(role, caller.PoolId, caller.MemberId, expires), now, cancellationToken).ConfigureAwait(false);
        return (token, expires);
    }

    /// <summary>The caller of the request's <c>Authorization: Bearer</c> token; null when there is none; 401 when it is unknown or expired.</summary>
    public Caller? Find(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            return null;
        }

        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            throw HttpAuthException.Unauthenticated("Authorization must be 'Bearer TOKEN' (POST /auth/token)");
        }

        var session = store.FindSession(Key(header["Bearer ".Length..].Trim()), time.GetUtcNow())
            ?? throw HttpAuthException.Unauthenticated("The bearer token is unknown or expired; sign a new challenge (POST /auth/challenge)");
        return new Caller(session.Role == "operator" ? CallerRole.Operator : CallerRole.Member, session.PoolId, session.MemberId);
    }

    private static string Key(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>
/// The role checks every write endpoint makes: none gives 401, someone else 403. Reads of a member's
/// own data (a device's readings) use them too; pool figures and the ledger stay public.
/// </summary>
internal static class Roles
{
    public static Caller Require(SessionBook sessions, HttpContext context) =>
        sessions.Find(context) ?? throw HttpAuthException.Unauthenticated("This endpoint needs a bearer token (POST /auth/challenge, then POST /auth/token)");

    public static Caller RequireOperator(SessionBook sessions, HttpContext context, string? poolId)
    {
        var caller = Require(sessions, context);
        return (poolId is null ? caller is { Role: CallerRole.Operator, PoolId: null } : caller.Operates(poolId))
            ? caller
            : throw HttpAuthException.Forbidden($"Only the operator of {(poolId is null ? "the service" : $"pool '{poolId}'")} may do this; the token is for the {caller}");
    }

    /// <summary>The member themselves (an operator may not act in a member's name: their signature is the member's).</summary>
    public static Caller RequireMember(SessionBook sessions, HttpContext context, string poolId, string memberId)
    {
        var caller = Require(sessions, context);
        return caller.Is(poolId, memberId) ? caller : throw HttpAuthException.Forbidden($"Only member '{memberId}' of pool '{poolId}' may do this; the token is for the {caller}");
    }

    public static Caller RequireMemberOrOperator(SessionBook sessions, HttpContext context, string poolId, string memberId)
    {
        var caller = Require(sessions, context);
        return caller.Is(poolId, memberId) || caller.Operates(poolId)
            ? caller
            : throw HttpAuthException.Forbidden($"Only member '{memberId}' or the operator of pool '{poolId}' may do this; the token is for the {caller}");
    }
}
