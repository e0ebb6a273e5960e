using System.Data.Common;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Payouts;

public sealed record PayoutInfo(string ClaimId, string PoolId, string Instruction, string Jws, string Kid, string SignedAt);

/// <summary>The <c>payouts</c> table; its primary key (the claim) makes a second payout for a claim impossible.</summary>
internal sealed class PayoutTable(ClaimsDatabase db)
{
    public static bool Exists(DbConnection c, string claimId) =>
        ClaimsDatabase.Scalar(c, null, "SELECT 1 FROM payouts WHERE claim_id=@c", ("@c", claimId)) is not null;

    /// <summary>Records a signed payout; false when the claim already has one.</summary>
    public static bool Insert(DbTransaction tx, PayoutInfo payout) =>
        Sql.Exec(tx, "INSERT INTO payouts(claim_id,pool_id,instruction,jws,kid,signed_at) VALUES (@c,@p,@i,@j,@k,@t) ON CONFLICT DO NOTHING",
            ("@c", payout.ClaimId), ("@p", payout.PoolId), ("@i", payout.Instruction), ("@j", payout.Jws), ("@k", payout.Kid), ("@t", payout.SignedAt)) == 1;

    /// <summary>A pool's balance: premiums received minus the amounts of the claims it paid.</summary>
    public static long Balance(DbConnection c, DbTransaction? tx, string poolId) =>
        PoolTables.PremiumTotal(c, tx, poolId)
        - Sql.Int64(c, tx, "SELECT COALESCE(SUM(c.amount),0) FROM payouts p JOIN claims c ON c.id=p.claim_id WHERE p.pool_id=@p", ("@p", poolId));

    public IReadOnlyList<PayoutInfo> List(string? poolId)
    {
        using var c = db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId));
        return Sql.Query(c, null, $"SELECT claim_id,pool_id,instruction,jws,kid,signed_at FROM payouts{where} ORDER BY signed_at, claim_id",
            r => new PayoutInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5)), parameters);
    }
}
