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
}
