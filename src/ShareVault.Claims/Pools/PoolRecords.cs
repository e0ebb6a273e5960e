using System.Text.Json.Nodes;
using ShareVault.Claims.Rules;

namespace ShareVault.Claims.Pools;

public sealed record PoolInfo(string Id, string Name, string Currency, string KeyName, long MaxPayout, long Balance);

public sealed record MemberInfo(string Id, string Name);

public sealed record PolicyInfo(string Id, string PoolId, string MemberId, string Rule, string RuleHash, long PayoutAmount, int VotesRequired, JsonObject Context);

public sealed record PolicyRow(string Id, string PoolId, string MemberId, TriggerRule Rule, long PayoutAmount, int VotesRequired, RuleContext Context);
