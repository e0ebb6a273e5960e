using System.Data.Common;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;

namespace ShareVault.Claims.Evaluation;

/// <summary>
/// The <c>evaluators</c> table: each (device, policy) trigger evaluator's saved state and the
/// sequence after which the policy sees the device's records.
/// </summary>
internal static class EvaluatorTable
{
    /// <summary>
    /// A new policy's evaluators for the member's devices: each starts with the device's next
    /// record (from_seq is the device's evaluated sequence).
    /// </summary>
    public static void SeedForPolicy(DbTransaction tx, PolicyRow policy)
    {
        var initial = new TriggerEvaluator(policy.Rule, policy.Context).SaveState();
        Sql.Exec(tx, "INSERT INTO evaluators(device_id,policy_id,from_seq,state) SELECT id, @pol, evaluated_seq, @st FROM devices WHERE pool_id=@p AND member_id=@m",
            ("@pol", policy.Id), ("@st", initial), ("@p", policy.PoolId), ("@m", policy.MemberId));
    }

    /// <summary>The device's saved evaluators by policy id.</summary>
    public static Dictionary<string, (long From, string State)> Load(DbTransaction tx, string deviceId)
    {
        var rows = new Dictionary<string, (long From, string State)>(StringComparer.Ordinal);
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, "SELECT policy_id, from_seq, state FROM evaluators WHERE device_id=@d", ("@d", deviceId));
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows[reader.GetString(0)] = (reader.GetInt64(1), reader.GetString(2));
        }

        return rows;
    }

    /// <summary>The saved evaluators of several devices (one statement per <see cref="Sql.InChunk"/> devices), by device, then policy id.</summary>
    public static Dictionary<string, Dictionary<string, (long From, string State)>> Load(DbTransaction tx, IReadOnlyList<string> deviceIds)
    {
        var rows = new Dictionary<string, Dictionary<string, (long From, string State)>>(StringComparer.Ordinal);
        foreach (var chunk in deviceIds.Chunk(Sql.InChunk))
        {
            var (inList, parameters) = Sql.In("device_id", chunk, "d");
            using var command = ClaimsDatabase.Command(tx.Connection!, tx, $"SELECT device_id, policy_id, from_seq, state FROM evaluators WHERE {inList}", parameters);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var device = reader.GetString(0);
                if (!rows.TryGetValue(device, out var byPolicy))
                {
                    rows[device] = byPolicy = new Dictionary<string, (long From, string State)>(StringComparer.Ordinal);
                }

                byPolicy[reader.GetString(1)] = (reader.GetInt64(2), reader.GetString(3));
            }
        }

        return rows;
    }

    public static void Save(DeferredWrites writes, string deviceId, string policyId, long fromSequence, string state) =>
        writes.Add("INSERT INTO evaluators(device_id,policy_id,from_seq,state) VALUES (@d,@p,@f,@s) ON CONFLICT (device_id,policy_id) DO UPDATE SET state=excluded.state",
            ("@d", deviceId), ("@p", policyId), ("@f", fromSequence), ("@s", state));
}
