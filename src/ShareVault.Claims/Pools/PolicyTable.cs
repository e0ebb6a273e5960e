using System.Data.Common;
using System.Text.Json.Nodes;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Pools;

/// <summary>The <c>policies</c> table; each rule is parsed once per process (a policy never changes once issued).</summary>
internal sealed class PolicyTable(ClaimsDatabase db, LedgerBook ledger)
{
    private readonly Dictionary<string, PolicyRow> _parsed = new(StringComparer.Ordinal);

    /// <summary>Inserts the policy with its <c>policy_issued</c> entry (rule canonical text and SHA-256, context).</summary>
    public void Insert(DbTransaction tx, PolicyRow policy, string now, JsonObject? admin)
    {
        PoolTables.RequireMember(tx, policy.PoolId, policy.MemberId);
        if (Sql.Exists(tx, "SELECT 1 FROM policies WHERE id=@id", ("@id", policy.Id)))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Policy '{policy.Id}' already exists");
        }

        var contextJson = RuleContextJson.Write(policy.Context);
        var body = RegistryChange.PolicyIssued(policy.Id, policy.MemberId, policy.Rule.Text, policy.Rule.HashHex, policy.PayoutAmount, policy.VotesRequired, contextJson);
        RegistryAdmin.Attach(policy.PoolId, LedgerEntry.PolicyIssued, body, RegistryAdmin.Keys(tx, policy.PoolId), admin);
        Sql.Exec(tx, "INSERT INTO policies(id,pool_id,member_id,rule_text,rule_hash,payout_amount,votes_required,context,created_at) VALUES (@id,@p,@m,@r,@h,@a,@v,@c,@t)",
            ("@id", policy.Id), ("@p", policy.PoolId), ("@m", policy.MemberId), ("@r", policy.Rule.Text), ("@h", policy.Rule.HashHex), ("@a", policy.PayoutAmount),
            ("@v", policy.VotesRequired), ("@c", contextJson.ToJsonString()), ("@t", now));
        ledger.Append(tx, policy.PoolId, LedgerEntry.PolicyIssued, body);
    }

    /// <summary>The policy's member accepts it (<c>policy_accepted</c>), signed by the member when they hold a key.</summary>
    public void Accept(DbTransaction tx, string poolId, string policyId, string memberId, JsonObject? memberSig)
    {
        PoolTables.RequireMember(tx, poolId, memberId);
        var ruleHash = Sql.Query(tx.Connection!, tx, "SELECT rule_hash FROM policies WHERE id=@id AND pool_id=@p AND member_id=@m", r => r.GetString(0), ("@id", policyId), ("@p", poolId), ("@m", memberId)).FirstOrDefault()
            ?? throw new ClaimsException(ClaimsError.NotFound, $"No policy '{policyId}' of member '{memberId}' in pool '{poolId}'");
        if (Accepted(tx.Connection!, tx, poolId).Contains(policyId))
        {
            throw new ClaimsException(ClaimsError.AlreadyExists, $"Policy '{policyId}' is already accepted");
        }

        var body = RegistryChange.PolicyAccepted(policyId, memberId, ruleHash);
        MemberActions.Attach(poolId, LedgerEntry.PolicyAccepted, body, memberId, MemberActions.Key(tx.Connection!, tx, poolId, memberId), memberSig);
        ledger.Append(tx, poolId, LedgerEntry.PolicyAccepted, body);
    }

    /// <summary>Ids of the pool's policies that their members accepted.</summary>
    public static HashSet<string> Accepted(DbConnection c, DbTransaction? tx, string poolId) =>
        [.. Sql.Query(c, tx, "SELECT body FROM ledger WHERE pool_id=@p AND kind=@k", r => JsonNode.Parse(r.GetString(0))?["policy"]?.GetValue<string>() ?? string.Empty,
            ("@p", poolId), ("@k", LedgerEntry.PolicyAccepted))];

    /// <summary>
    /// The policies of several pool members, parsed, each member's in id order (an empty list for a
    /// member without one): one statement per <see cref="Sql.InChunk"/> members instead of one each.
    /// </summary>
    public Dictionary<(string PoolId, string MemberId), List<PolicyRow>> ForMembers(DbTransaction tx, IReadOnlyCollection<(string PoolId, string MemberId)> members)
    {
        var result = members.Distinct().ToDictionary(m => m, _ => new List<PolicyRow>());
        foreach (var chunk in result.Keys.Select(m => m.MemberId).Distinct(StringComparer.Ordinal).Chunk(Sql.InChunk))
        {
            var (inList, parameters) = Sql.In("member_id", chunk, "m");
            var rows = Sql.Query(tx.Connection!, tx, $"SELECT id, pool_id, member_id, rule_text, payout_amount, votes_required, context FROM policies WHERE {inList} ORDER BY id", r =>
            {
                var (id, poolId, memberId) = (r.GetString(0), r.GetString(1), r.GetString(2));
                lock (_parsed)
                {
                    if (!_parsed.TryGetValue(id, out var policy))
                    {
                        _parsed[id] = policy = new PolicyRow(id, poolId, memberId, TriggerRule.Parse(r.GetString(3)), r.GetInt64(4), (int)r.GetInt64(5),
                            RuleContextJson.Read(JsonNode.Parse(r.GetString(6))!.AsObject()));
                    }

                    return policy;
                }
            }, parameters);
            foreach (var policy in rows)
            {
                if (result.TryGetValue((policy.PoolId, policy.MemberId), out var list))
                {
                    list.Add(policy);
                }
            }
        }

        return result;
    }

    /// <summary>The pool member's policies, parsed.</summary>
    public List<PolicyRow> ForMember(DbTransaction tx, string poolId, string memberId) =>
        Sql.Query(tx.Connection!, tx, "SELECT id, rule_text, payout_amount, votes_required, context FROM policies WHERE pool_id=@p AND member_id=@m ORDER BY id", r =>
        {
            var id = r.GetString(0);
            lock (_parsed)
            {
                if (!_parsed.TryGetValue(id, out var policy))
                {
                    _parsed[id] = policy = new PolicyRow(id, poolId, memberId, TriggerRule.Parse(r.GetString(1)), r.GetInt64(2), (int)r.GetInt64(3),
                        RuleContextJson.Read(JsonNode.Parse(r.GetString(4))!.AsObject()));
                }

                return policy;
            }
        }, ("@p", poolId), ("@m", memberId));

    /// <summary>Votes a policy's claims need (0: approved by the rule alone).</summary>
    public static long VotesRequired(DbTransaction tx, string policyId) =>
        Sql.Int64(tx.Connection!, tx, "SELECT votes_required FROM policies WHERE id=@id", ("@id", policyId));

    public IReadOnlyList<PolicyInfo> List(string? poolId)
    {
        using var c = db.OpenReader();
        var (where, parameters) = ClaimsDatabase.Where(("pool_id", poolId));
        return Sql.Query(c, null, $"SELECT id,pool_id,member_id,rule_text,rule_hash,payout_amount,votes_required,context FROM policies{where} ORDER BY id",
            r => new PolicyInfo(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetInt64(5), (int)r.GetInt64(6), JsonNode.Parse(r.GetString(7))!.AsObject()),
            parameters);
    }
}
