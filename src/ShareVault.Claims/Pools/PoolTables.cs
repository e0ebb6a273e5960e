using System.Data.Common;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Pools;

/// <summary>The <c>pools</c>, <c>members</c> and <c>premiums</c> tables, each change with its ledger entry.</summary>
internal sealed class PoolTables(ClaimsDatabase db, LedgerBook ledger)
{
    public void InsertPool(DbTransaction tx, string id, string name, string currency, string keyName, long maxPayout, string now, JsonObject entry)
    {
        if (Sql.Exists(tx, "SELECT 1 FROM pools WHERE id=@id", ("@id", id)))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Pool '{id}' already exists");
        }

        Sql.Exec(tx, "INSERT INTO pools(id,name,currency,key_name,max_payout,created_at) VALUES (@id,@n,@c,@k,@m,@t)",
            ("@id", id), ("@n", name), ("@c", currency), ("@k", keyName), ("@m", maxPayout), ("@t", now));
        ledger.Append(tx, id, LedgerEntry.PoolCreated, entry);
    }

    public void InsertMember(DbTransaction tx, string poolId, string memberId, string name, string now) => InsertMember(tx, poolId, memberId, name, null, null, now);

    /// <summary>A member who holds <paramref name="key"/> joins with their signature over the <c>member_joined</c> action by that key.</summary>
    public void InsertMember(DbTransaction tx, string poolId, string memberId, string name, MemberKey? key, JsonObject? memberSig, string now)
    {
        RequirePool(tx, poolId);
        if (Sql.Exists(tx, "SELECT 1 FROM members WHERE pool_id=@p AND id=@m", ("@p", poolId), ("@m", memberId)))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Member '{memberId}' already belongs to pool '{poolId}'");
        }

        Sql.Exec(tx, "INSERT INTO members(pool_id,id,name,created_at) VALUES (@p,@m,@n,@t)", ("@p", poolId), ("@m", memberId), ("@n", name), ("@t", now));
        var body = RegistryChange.MemberJoined(memberId, name, key);
        MemberActions.Attach(poolId, LedgerEntry.MemberJoined, body, memberId, key, memberSig);
        ledger.Append(tx, poolId, LedgerEntry.MemberJoined, body);
    }

    /// <summary>
    /// A premium paid into the pool. In a pool with administrators it needs a payment reference and an
    /// admin signature (the balance a custody node checks a payout against is only as good as its
    /// premiums); a reference is accepted once per pool.
    /// </summary>
    public void InsertPremium(DbTransaction tx, string poolId, string memberId, long amount, string? reference, JsonObject? admin, string now)
    {
        RequireMember(tx, poolId, memberId);
        var keys = RegistryAdmin.Keys(tx, poolId);
        if (reference is null && keys.Count > 0)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"Pool '{poolId}' is administered: a premium needs its payment reference (--ref), which the administrator signs");
        }

        var body = RegistryChange.Premium(memberId, amount, reference);
        RegistryAdmin.Attach(poolId, LedgerEntry.Premium, body, keys, admin);
        if (reference is not null && Sql.Query(tx.Connection!, tx, "SELECT body FROM ledger WHERE pool_id=@p AND kind=@k", r => r.GetString(0), ("@p", poolId), ("@k", LedgerEntry.Premium))
                .Any(text => JsonNode.Parse(text)?["ref"]?.GetValue<string>() == reference))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"A premium with reference '{reference}' is already recorded in pool '{poolId}'");
        }

        Sql.Exec(tx, "INSERT INTO premiums(pool_id,member_id,amount,paid_at) VALUES (@p,@m,@a,@t)", ("@p", poolId), ("@m", memberId), ("@a", amount), ("@t", now));
        ledger.Append(tx, poolId, LedgerEntry.Premium, body);
    }

    /// <summary>All premiums a pool received (its balance is this minus its payouts).</summary>
    public static long PremiumTotal(DbConnection c, DbTransaction? tx, string poolId) =>
        Sql.Int64(c, tx, "SELECT COALESCE(SUM(amount),0) FROM premiums WHERE pool_id=@p", ("@p", poolId));

    public static long MaxPayout(DbTransaction tx, string poolId) =>
        Sql.Int64(tx.Connection!, tx, "SELECT max_payout FROM pools WHERE id=@p", ("@p", poolId));

    public static void RequirePool(DbTransaction tx, string poolId)
    {
        if (!Sql.Exists(tx, "SELECT 1 FROM pools WHERE id=@p", ("@p", poolId)))
        {
            throw new ClaimsException(ClaimsError.NotFound, $"No pool '{poolId}'");
        }
    }

    public static void RequireMember(DbTransaction tx, string poolId, string memberId)
    {
        RequirePool(tx, poolId);
        if (!Sql.Exists(tx, "SELECT 1 FROM members WHERE pool_id=@p AND id=@m", ("@p", poolId), ("@m", memberId)))
        {
            throw new ClaimsException(ClaimsError.NotFound, $"No member '{memberId}' in pool '{poolId}'");
        }
    }

    /// <summary>The pools, with a balance of 0 (the caller adds premiums minus payouts).</summary>
    public static IReadOnlyList<PoolInfo> Pools(DbConnection c) =>
        Sql.Query(c, null, "SELECT id,name,currency,key_name,max_payout FROM pools ORDER BY id", r => new PoolInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), 0));

    public IReadOnlyList<MemberInfo> Members(string poolId)
    {
        using var c = db.OpenReader();
        return Sql.Query(c, null, "SELECT id,name FROM members WHERE pool_id=@p ORDER BY id", r => new MemberInfo(r.GetString(0), r.GetString(1)), ("@p", poolId));
    }
}
