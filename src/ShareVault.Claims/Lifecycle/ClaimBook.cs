using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Lifecycle;

/// <summary>
/// The <c>claims</c> and <c>votes</c> tables: a claim opens when a trigger fires, is decided by the
/// rule or by votes, and is marked paid; each step has its ledger entry in the same transaction.
/// </summary>
internal sealed class ClaimBook(ClaimsDatabase db, LedgerBook ledger, TimeProvider time)
{
    /// <summary>One claim per policy, device and episode start: the id is a hash of the three.</summary>
    public static string ClaimId(string policyId, string deviceId, long startSeq) =>
        "clm-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{policyId}\n{deviceId}\n{startSeq}")))[..24];

    /// <summary>Opens the claim of a firing (capped at the pool's maximum payout), once per episode.</summary>
    public void Open(DbTransaction tx, PolicyRow policy, string deviceId, TriggerFiring firing)
    {
        var startSeq = firing.Records[0].Sequence;
        var id = ClaimId(policy.Id, deviceId, startSeq);
        var amount = Math.Min(policy.PayoutAmount, PoolTables.MaxPayout(tx, policy.PoolId));
        // Each record with when the service received it (stored in this transaction or before), so
        // `ledger verify` can hold the record's time to its arrival as ingest did (EvidenceTimeLimits).
        var received = Sql.Query(tx.Connection!, tx, "SELECT seq, received_at FROM evidence WHERE device_id=@d AND seq>=@a AND seq<=@b",
            r => (r.GetInt64(0), r.GetString(1)), ("@d", deviceId), ("@a", startSeq), ("@b", firing.Records[^1].Sequence)).ToDictionary(x => x.Item1, x => x.Item2);
        // A record no longer stored (pruned after evaluation) has no arrival to list: the verifier then
        // holds its time only to the claim's (a record arrives before the claim it opens).
        var evidence = new JsonArray([.. firing.Records.Select(r =>
        {
            var item = new JsonObject { ["seq"] = r.Sequence, ["sha256"] = Convert.ToHexStringLower(r.Hash) };
            if (received.TryGetValue(r.Sequence, out var at))
            {
                item["received_at"] = at;
            }

            return (JsonNode)item;
        })]);
        var inserted = Sql.Exec(tx, "INSERT INTO claims(id,pool_id,member_id,policy_id,device_id,start_seq,status,amount,rule_hash,evidence,opened_at) VALUES (@id,@p,@m,@pol,@d,@s,@st,@a,@h,@e,@t) ON CONFLICT DO NOTHING",
            ("@id", id), ("@p", policy.PoolId), ("@m", policy.MemberId), ("@pol", policy.Id), ("@d", deviceId), ("@s", startSeq), ("@st", ClaimStatus.Opened.ToText()),
            ("@a", amount), ("@h", policy.Rule.HashHex), ("@e", evidence.ToJsonString()), ("@t", Now()));
        if (inserted == 0)
        {
            return; // this episode already opened its claim: nothing opens twice
        }

        ledger.Append(tx, policy.PoolId, LedgerEntry.ClaimOpened, new JsonObject
        {
            ["claim"] = id,
            ["policy"] = policy.Id,
            ["member"] = policy.MemberId,
            ["device"] = deviceId,
            ["rule"] = policy.Rule.Text,
            ["rule_hash"] = policy.Rule.HashHex,
            ["amount"] = amount,
            ["from"] = LedgerEntry.FormatTime(firing.From),
            ["until"] = LedgerEntry.FormatTime(firing.Until),
            ["evidence"] = evidence,
            [ClaimPredecessor.Field] = PrecededBy(tx, deviceId, startSeq),
        });
        if (policy.VotesRequired == 0)
        {
            Decide(tx, policy.PoolId, id, ClaimStatus.Approved, DecidedBy.Rule, "the policy approves its trigger automatically");
        }
    }

    /// <summary>
    /// A member's vote on an open claim; the claimant cannot vote. The vote is a <c>vote</c> entry,
    /// signed by the member when they hold a key (<paramref name="memberSig"/>). Decides the claim once
    /// approvals or rejections reach the policy's votes_required; the decision names the vote entries it
    /// counts. Returns the claim's status after the vote.
    /// </summary>
    public ClaimStatus Vote(DbTransaction tx, string claimId, string memberId, bool approve, JsonObject? memberSig = null)
    {
        string poolId, claimant, policyId;
        ClaimStatus status;
        using (var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT pool_id, member_id, status, policy_id FROM claims WHERE id=@id", ("@id", claimId)))
        using (var reader = command.ExecuteReader())
        {
            if (!reader.Read())
            {
                throw new ClaimsException(ClaimsError.NotFound, $"No claim '{claimId}'");
            }

            (poolId, claimant, status, policyId) = (reader.GetString(0), reader.GetString(1), ClaimStatusText.Parse(reader.GetString(2)), reader.GetString(3));
        }

        var required = PolicyTable.VotesRequired(tx, policyId);
        PoolTables.RequireMember(tx, poolId, memberId);
        if (memberId == claimant)
        {
            throw new ClaimsException(ClaimsError.Conflict, "A member cannot vote on their own claim");
        }

        if (status != ClaimStatus.Opened)
        {
            throw new ClaimsException(ClaimsError.Conflict, $"Claim '{claimId}' is {status.ToText()}; votes are closed");
        }

        if (Sql.Exec(tx, "INSERT INTO votes(claim_id,member_id,approve,cast_at) VALUES (@c,@m,@a,@t) ON CONFLICT DO NOTHING", ("@c", claimId), ("@m", memberId), ("@a", approve ? 1 : 0), ("@t", Now())) == 0)
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Member '{memberId}' has already voted on claim '{claimId}'");
        }

        var body = RegistryChange.Vote(claimId, memberId, approve);
        MemberActions.Attach(poolId, LedgerEntry.Vote, body, memberId, MemberActions.Key(tx.Connection!, tx, poolId, memberId), memberSig);
        ledger.Append(tx, poolId, LedgerEntry.Vote, body);

        // The vote entries of this claim, for the decision to name (PoolRegistry checks the tally against them).
        var cast = Sql.Query(tx.Connection!, tx, "SELECT seq, body FROM ledger WHERE pool_id=@p AND kind=@k", r => (Seq: r.GetInt64(0), Body: JsonNode.Parse(r.GetString(1))!.AsObject()),
                ("@p", poolId), ("@k", LedgerEntry.Vote))
            .Where(v => v.Body["claim"]?.GetValue<string>() == claimId).ToList();
        var approvals = cast.Where(v => v.Body["approve"]!.GetValue<bool>()).Select(v => v.Seq).ToList();
        var rejections = cast.Where(v => !v.Body["approve"]!.GetValue<bool>()).Select(v => v.Seq).ToList();
        if (approvals.Count >= required)
        {
            Decide(tx, poolId, claimId, status = ClaimStatus.Approved, DecidedBy.Votes, $"{approvals.Count} member(s) approved", approvals);
        }
        else if (rejections.Count >= required)
        {
            Decide(tx, poolId, claimId, status = ClaimStatus.Declined, DecidedBy.Votes, $"{rejections.Count} member(s) declined", rejections);
        }

        return status;
    }

    /// <summary>An approved claim becomes paid (in the transaction that records its payout).</summary>
    public static void MarkPaid(DbTransaction tx, string claimId) =>
        Sql.Exec(tx, "UPDATE claims SET status=@paid WHERE id=@c AND status=@approved",
            ("@paid", ClaimStatus.Paid.ToText()), ("@c", claimId), ("@approved", ClaimStatus.Approved.ToText()));

    public IReadOnlyList<ClaimInfo> List(string? poolId, ClaimStatus? status)
    {
        using var c = db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId), ("status", status?.ToText()));
        return Sql.Query(c, null, $"SELECT id,pool_id,member_id,policy_id,device_id,start_seq,status,amount,rule_hash,evidence,opened_at,decided_at,reason FROM claims{where} ORDER BY opened_at, id",
            r => new ClaimInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), r.GetString(6), r.GetInt64(7), r.GetString(8),
                JsonNode.Parse(r.GetString(9))!.AsArray(), r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12)),
            parameters);
    }

    private string Now() => LedgerEntry.FormatTime(time.GetUtcNow());

    /// <summary>
    /// The record before the claim's first, as the export and the payout justification will carry it
    /// (<see cref="Ingest.ClaimEvidence"/>): stored, and not one that arrived after evaluation moved past
    /// its gap. Named in the claim, a verifier can demand it, so leaving it out of an export cannot hide
    /// the first record's chain link or time step; null when the service had none (a chain's first
    /// record, or a gap it moved past).
    /// </summary>
    private static JsonObject? PrecededBy(DbTransaction tx, string deviceId, long startSeq)
    {
        var seq = startSeq - 1;
        var skipped = Sql.Int64(tx.Connection!, tx, "SELECT COUNT(*) FROM gaps WHERE device_id=@d AND skipped_at IS NOT NULL AND from_seq<=@s AND to_seq>=@s",
            ("@d", deviceId), ("@s", seq));
        var hash = skipped > 0 ? null : Sql.Query(tx.Connection!, tx, "SELECT hash FROM evidence WHERE device_id=@d AND seq=@s", r => (byte[])r[0], ("@d", deviceId), ("@s", seq)).FirstOrDefault();
        return hash is null ? null : new JsonObject { ["seq"] = seq, ["sha256"] = Convert.ToHexStringLower(hash) };
    }

    private void Decide(DbTransaction tx, string poolId, string claimId, ClaimStatus decision, DecidedBy by, string reason, IReadOnlyList<long>? votes = null)
    {
        Sql.Exec(tx, "UPDATE claims SET status=@s, decided_at=@t, reason=@r WHERE id=@id", ("@s", decision.ToText()), ("@t", Now()), ("@r", reason), ("@id", claimId));
        var body = new JsonObject { ["claim"] = claimId, ["decision"] = decision.ToText(), ["by"] = by.ToText(), ["reason"] = reason };
        if (votes is not null)
        {
            body["votes"] = new JsonArray([.. votes.Select(v => (JsonNode)v)]);
        }

        ledger.Append(tx, poolId, LedgerEntry.Decision, body);
    }
}
