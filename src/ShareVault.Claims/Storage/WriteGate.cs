using System.Data.Common;

namespace ShareVault.Claims.Storage;

/// <summary>
/// This process's single writer: one write transaction at a time on <see cref="ClaimsDatabase.Writer"/>
/// (the database's own lock serialises writers across processes, see <see cref="ClaimsDatabase.BeginWrite"/>).
/// </summary>
internal sealed class WriteGate(ClaimsDatabase db) : IDisposable
{
    private readonly SemaphoreSlim _write = new(1, 1);

    public ClaimsDatabase Database { get; } = db;

    /// <summary>Runs <paramref name="work"/> in one write transaction and commits it.</summary>
    public async Task RunAsync(Action<DbTransaction> work, CancellationToken cancellationToken)
    {
        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var tx = Database.BeginWrite();
            work(tx);
            tx.Commit();
        }
        finally
        {
            _write.Release();
        }
    }

    /// <summary>
    /// As <see cref="RunAsync"/>, then runs the actions <paramref name="work"/> queued for after the
    /// commit (cache updates that must not outlive a rolled-back transaction), still under the gate.
    /// </summary>
    public async Task<T> RunAsync<T>(Func<DbTransaction, List<Action>, T> work, CancellationToken cancellationToken)
    {
        await _write.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var afterCommit = new List<Action>();
            T result;
            using (var tx = Database.BeginWrite())
            {
                result = work(tx, afterCommit);
                tx.Commit();
            }

            foreach (var apply in afterCommit)
            {
                apply();
            }

            return result;
        }
        finally
        {
            _write.Release();
        }
    }

    public void Dispose() => _write.Dispose();
}
