using System.Data.Common;
using System.Globalization;

namespace ShareVault.Claims.Storage;

/// <summary>
/// The few statement shapes every table's owner uses: execute, exists, scalar count, and map rows.
/// Values always go through parameters (<see cref="ClaimsDatabase.Command"/>).
/// </summary>
internal static class Sql
{
    public static int Exec(DbTransaction tx, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = ClaimsDatabase.Command(tx.Connection!, tx, sql, parameters);
        return command.ExecuteNonQuery();
    }

    /// <summary>Adds one statement with its parameters to <paramref name="batch"/> (sent with the others in one round trip).</summary>
    public static void Add(DbBatch batch, string sql, IEnumerable<(string Name, object? Value)> parameters)
    {
        var command = batch.CreateBatchCommand();
#pragma warning disable CA2100 // SQL text is constant; values always go through parameters.
        command.CommandText = sql;
#pragma warning restore CA2100
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        batch.BatchCommands.Add(command);
    }

    public static bool Exists(DbTransaction tx, string sql, params (string Name, object? Value)[] parameters) =>
        ClaimsDatabase.Scalar(tx.Connection!, tx, sql, parameters) is not null;

    public static long Int64(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters) =>
        Convert.ToInt64(ClaimsDatabase.Scalar(c, tx, sql, parameters), CultureInfo.InvariantCulture);

    public static List<T> Query<T>(DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map, params (string Name, object? Value)[] parameters)
    {
        using var command = ClaimsDatabase.Command(c, tx, sql, parameters);
        using var reader = command.ExecuteReader();
        var result = new List<T>();
        while (reader.Read())
        {
            result.Add(map(reader));
        }

        return result;
    }

    /// <summary>
    /// <c>column IN (@prefix0,@prefix1,…)</c> and its parameters: one statement for a whole batch of
    /// keys instead of one round trip per key (callers chunk to <see cref="InChunk"/> keys).
    /// </summary>
    public static (string Sql, (string Name, object? Value)[] Parameters) In(string column, IReadOnlyList<string> values, string prefix)
    {
        var parameters = new (string Name, object? Value)[values.Count];
        for (var i = 0; i < values.Count; i++)
        {
            parameters[i] = ($"@{prefix}{i.ToString(CultureInfo.InvariantCulture)}", values[i]);
        }

        return ($"{column} IN ({string.Join(',', parameters.Select(p => p.Name))})", parameters);
    }

    /// <summary>Keys per <see cref="In"/> statement: far below both engines' parameter limits (SQLite 32 766, PostgreSQL 65 535).</summary>
    public const int InChunk = 500;
}

/// <summary>
/// Writes of one transaction that nothing later in it reads back (evaluation cursors, evaluator
/// states, gaps, chain breaks, rejections), queued in order and sent together at <see cref="Flush"/>:
/// on PostgreSQL as one batch per round trip instead of one round trip each, which per device of a
/// batch made the store stage wait on the network (see docs/performance.md). In the same
/// transaction, in the same order, so what commits is unchanged.
/// </summary>
internal sealed class DeferredWrites
{
    /// <summary>Statements per PostgreSQL round trip.</summary>
    private const int BatchSize = 256;

    private readonly List<(string Sql, (string Name, object? Value)[] Parameters)> _writes = [];

    public int Count => _writes.Count;

    public void Add(string sql, params (string Name, object? Value)[] parameters) => _writes.Add((sql, parameters));

    /// <summary>Executes the queued writes in order (a DbBatch where the provider has one, else one by one) and empties the queue.</summary>
    public void Flush(DbTransaction tx)
    {
        var connection = tx.Connection!;
        if (_writes.Count == 0)
        {
            return;
        }

        if (!connection.CanCreateBatch)
        {
            foreach (var (sql, parameters) in _writes)
            {
                Sql.Exec(tx, sql, parameters);
            }

            _writes.Clear();
            return;
        }

        for (var start = 0; start < _writes.Count; start += BatchSize)
        {
            using var batch = connection.CreateBatch();
            batch.Transaction = tx;
            foreach (var (sql, parameters) in _writes.Skip(start).Take(BatchSize))
            {
                Sql.Add(batch, sql, parameters);
            }

            batch.ExecuteNonQuery();
        }

        _writes.Clear();
    }
}
