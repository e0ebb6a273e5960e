using System.Data.Common;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Pools;

/// <summary>A bearer session as stored: who it is for and until when (the token itself is never stored).</summary>
public sealed record SessionRecord(string Role, string? PoolId, string? MemberId, DateTimeOffset Expires);

/// <summary>An operator's pending invitation as stored (the one-time code itself is never stored).</summary>
public sealed record InvitationRecord(string PoolId, string MemberId, string Name, DateTimeOffset Expires);

/// <summary>What a passkey's signature counter says about an assertion (W3C WebAuthn Level 2 §7.2 step 21).</summary>
public enum SignCountCheck
{
    /// <summary>The counter increased (or the authenticator keeps none: 0 now and before); stored.</summary>
    Advanced,

    /// <summary>The counter did not increase over the stored one: the credential may have been cloned.</summary>
    NotIncreased,
}

/// <summary>
/// The HTTP API's access state, kept in the claims database so that a restart (or another service
/// instance on the same PostgreSQL) keeps members logged in and invitations pending: bearer sessions
/// and invitation codes by the SHA-256 of their secret only, with their expiry, and each passkey's
/// last signature counter. Not ledger state: nothing here changes a decision.
/// </summary>
public sealed class MemberAccess
{
    private readonly ClaimsDatabase _db;
    private readonly WriteGate _gate;

    internal MemberAccess(ClaimsDatabase db, WriteGate gate)
    {
        _db = db;
        _gate = gate;
    }

    /// <summary>Stores a session under the hash of its token, and drops the sessions and invitations expired by <paramref name="now"/>.</summary>
    public Task OpenSessionAsync(string tokenHash, SessionRecord session, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(tokenHash);
        ArgumentNullException.ThrowIfNull(session);
        return _gate.RunAsync(tx =>
        {
            Sql.Exec(tx, "DELETE FROM access_sessions WHERE expires_at < @now", ("@now", now.ToUnixTimeMilliseconds()));
            Sql.Exec(tx, "DELETE FROM access_invitations WHERE expires_at < @now", ("@now", now.ToUnixTimeMilliseconds()));
            Sql.Exec(tx, "INSERT INTO access_sessions(token_hash,role,pool_id,member_id,expires_at) VALUES (@h,@r,@p,@m,@e)",
                ("@h", tokenHash), ("@r", session.Role), ("@p", session.PoolId), ("@m", session.MemberId), ("@e", session.Expires.ToUnixTimeMilliseconds()));
        }, cancellationToken);
    }

    /// <summary>The session stored under <paramref name="tokenHash"/> if it has not expired by <paramref name="now"/>.</summary>
    public SessionRecord? FindSession(string tokenHash, DateTimeOffset now)
    {
        using var c = _db.OpenReader();
        return Sql.Query(c, null, "SELECT role,pool_id,member_id,expires_at FROM access_sessions WHERE token_hash=@h AND expires_at >= @now",
            r => new SessionRecord(r.GetString(0), Nullable(r, 1), Nullable(r, 2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))),
            ("@h", tokenHash), ("@now", now.ToUnixTimeMilliseconds())).FirstOrDefault();
    }

    /// <summary>Stores an invitation under the hash of its code.</summary>
    public Task AddInvitationAsync(string codeHash, InvitationRecord invitation, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(codeHash);
        ArgumentNullException.ThrowIfNull(invitation);
        return _gate.RunAsync(tx => Sql.Exec(tx, "INSERT INTO access_invitations(code_hash,pool_id,member_id,name,expires_at) VALUES (@h,@p,@m,@n,@e)",
            ("@h", codeHash), ("@p", invitation.PoolId), ("@m", invitation.MemberId), ("@n", invitation.Name), ("@e", invitation.Expires.ToUnixTimeMilliseconds())), cancellationToken);
    }

    /// <summary>The invitation stored under <paramref name="codeHash"/> if it has not expired by <paramref name="now"/> (nor been used).</summary>
    public InvitationRecord? FindInvitation(string codeHash, DateTimeOffset now)
    {
        using var c = _db.OpenReader();
        return Sql.Query(c, null, "SELECT pool_id,member_id,name,expires_at FROM access_invitations WHERE code_hash=@h AND expires_at >= @now",
            r => new InvitationRecord(r.GetString(0), r.GetString(1), r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3))),
            ("@h", codeHash), ("@now", now.ToUnixTimeMilliseconds())).FirstOrDefault();
    }

    /// <summary>Uses an invitation up (it admits one member once).</summary>
    public Task UseInvitationAsync(string codeHash, CancellationToken cancellationToken) =>
        _gate.RunAsync(tx => Sql.Exec(tx, "DELETE FROM access_invitations WHERE code_hash=@h", ("@h", codeHash)), cancellationToken);

    /// <summary>
    /// Compares a verified assertion's signature counter with the one stored for the credential and
    /// keeps the new one (W3C WebAuthn Level 2 §7.2 step 21, §6.1.1): when either is non-zero the new
    /// counter must be greater, else the assertion may come from a cloned authenticator. An
    /// authenticator without a counter reports 0 every time (synced passkeys do), which passes.
    /// Check and update happen in one write transaction, so two concurrent assertions with one counter
    /// value cannot both pass.
    /// </summary>
    public Task<SignCountCheck> AdvanceSignCountAsync(string poolId, string memberId, string credentialId, uint signCount, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(poolId);
        ArgumentException.ThrowIfNullOrEmpty(memberId);
        ArgumentException.ThrowIfNullOrEmpty(credentialId);
        return _gate.RunAsync((tx, _) =>
        {
            var stored = ClaimsDatabase.Scalar(tx.Connection!, tx, "SELECT sign_count FROM access_passkey_counters WHERE pool_id=@p AND member_id=@m AND credential_id=@c",
                ("@p", poolId), ("@m", memberId), ("@c", credentialId));
            var previous = stored is null ? 0L : ClaimsDatabase.ToInt64(stored);
            if ((signCount != 0 || previous != 0) && signCount <= previous)
            {
                return SignCountCheck.NotIncreased;
            }

            Sql.Exec(tx, stored is null
                    ? "INSERT INTO access_passkey_counters(pool_id,member_id,credential_id,sign_count) VALUES (@p,@m,@c,@n)"
                    : "UPDATE access_passkey_counters SET sign_count=@n WHERE pool_id=@p AND member_id=@m AND credential_id=@c",
                ("@p", poolId), ("@m", memberId), ("@c", credentialId), ("@n", (long)signCount));
            return SignCountCheck.Advanced;
        }, cancellationToken);
    }

    private static string? Nullable(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
}
