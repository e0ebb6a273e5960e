using System.Collections.Concurrent;
using ShareVault.Hardware;

namespace ShareVault.Node.Server;

/// <summary>
/// Shoup share imports in the two steps the dealer needs over the wire: the first request starts
/// <see cref="IShoupShareStore.ImportShoupShare"/>, which makes the transport key pair inside the
/// token and hands its public key out; the second brings the wrapped share, and the import
/// finishes inside the same token session. An import not finished within <see cref="Expiry"/>
/// is abandoned (the token destroys its transport key).
/// </summary>
internal sealed class ShareImports(IShoupShareStore store)
{
    public static readonly TimeSpan Expiry = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);

    public sealed class Pending(string label)
    {
        public string Label { get; } = label;

        public TaskCompletionSource<RsaPublicKey> TransportKey { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<WrappedShare> Wrapped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Import { get; set; } = Task.CompletedTask;
    }

    /// <summary>Starts an import; returns its id and the token's transport public key.</summary>
    public async Task<(string Id, RsaPublicKey TransportKey)> StartAsync(string label, bool persistent, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        var pending = new Pending(label);
        _pending[id] = pending;
        pending.Import = Task.Run(() => store.ImportShoupShare(label, key =>
        {
            pending.TransportKey.TrySetResult(key);
            return pending.Wrapped.Task.Wait(Expiry)
                ? pending.Wrapped.Task.Result
                : throw new ShareStoreException(ShareStoreError.DeviceError, "The dealer did not send the wrapped share in time; import abandoned");
        }, persistent), CancellationToken.None);
        _ = pending.Import.ContinueWith(t => pending.TransportKey.TrySetException(t.Exception?.InnerExceptions ?? [new InvalidOperationException("import ended")]), TaskScheduler.Default);
        try
        {
            return (id, await pending.TransportKey.Task.WaitAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            _pending.TryRemove(id, out _);
            throw;
        }
    }

    /// <summary>Finishes an import with the dealer's wrapped share; false when no such import is waiting.</summary>
    public async Task<bool> FinishAsync(string id, string label, WrappedShare wrapped)
    {
        if (!_pending.TryRemove(id, out var pending) || pending.Label != label)
        {
            return false;
        }

        pending.Wrapped.TrySetResult(wrapped);
        await pending.Import.ConfigureAwait(false);
        return true;
    }

    /// <summary>Abandons every waiting import of a label (a DELETE of an abandoned ceremony).</summary>
    public void Abandon(string label)
    {
        foreach (var (id, pending) in _pending.Where(p => p.Value.Label == label).ToList())
        {
            if (_pending.TryRemove(id, out _))
            {
                pending.Wrapped.TrySetException(new ShareStoreException(ShareStoreError.DeviceError, "Import abandoned"));
            }
        }
    }
}
