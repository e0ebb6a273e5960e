using System.Collections.Concurrent;
using ShareVault.Hardware.Pkcs11;
using ShareVault.Hardware.Tpm;

namespace ShareVault.Hardware.Custodians;

/// <summary>
/// Opens each custodian's store once and keeps it (sessions, logins and key handles are reused
/// across signatures). Opening is lazy and per custodian, so one unreachable device does not stop
/// the others.
/// </summary>
public sealed class ShareStoreRegistry : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<IShareStore>> _stores = new(StringComparer.Ordinal);
    private readonly string _dataDir;
    private readonly Func<CustodianAddress, IShareStore>? _openNode;

    public ShareStoreRegistry(string dataDir)
        : this(dataDir, null)
    {
    }

    /// <summary>
    /// <paramref name="openNode"/> opens <see cref="CustodianKind.Node"/> custodians (the node client
    /// lives above this library, in ShareVault.Custody); without it a node URI is refused.
    /// </summary>
    public ShareStoreRegistry(string dataDir, Func<CustodianAddress, IShareStore>? openNode)
    {
        _dataDir = dataDir;
        _openNode = openNode;
    }

    /// <summary>The store of a custodian, opened on first use.</summary>
    public IShareStore Get(CustodianAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var key = StoreKey(address);
        var lazy = _stores.GetOrAdd(key, _ => new Lazy<IShareStore>(() => Open(address), LazyThreadSafetyMode.ExecutionAndPublication));
        try
        {
            return lazy.Value;
        }
        catch
        {
            // Do not cache a failure: the device may come back.
            _stores.TryRemove(new KeyValuePair<string, Lazy<IShareStore>>(key, lazy));
            throw;
        }
    }

    /// <summary>
    /// Drops a custodian's open store (after it failed or timed out), so the next use reopens it. The
    /// store stops taking calls now and releases its sessions or TPM connection when the calls still
    /// in flight (an abandoned partial still inside <c>C_Sign</c> or the TCTI) have returned; this does
    /// not wait for them.
    /// </summary>
    public void Forget(CustodianAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (_stores.TryRemove(StoreKey(address), out var lazy) && lazy.IsValueCreated)
        {
            lazy.Value.Dispose();
        }
    }

    private IShareStore Open(CustodianAddress address) => address.Kind switch
    {
        CustodianKind.Pkcs11 => Pkcs11ShareStore.Open(Pkcs11Uri.Parse(address.Uri)),
        // TPM key blobs live under the data folder (DATA_DIR/tpm/OBJECT/); see docs/tpm.md.
        CustodianKind.Tpm => TpmShareStore.Open(TpmUri.Parse(address.Uri), _dataDir),
        CustodianKind.Node => _openNode?.Invoke(address)
            ?? throw new ShareStoreException(ShareStoreError.BadUri, $"Custodian '{address.Name}' is a custody node, and this process was built without the node client"),
        _ => throw new ShareStoreException(ShareStoreError.BadUri, $"Unknown custodian kind '{address.Kind}'"),
    };

    // One store per token (or TPM), whatever object the URI names.
    private static string StoreKey(CustodianAddress address)
    {
        if (address.Kind == CustodianKind.Pkcs11)
        {
            var uri = Pkcs11Uri.Parse(address.Uri);
            return $"pkcs11|{uri.ModulePath}|{uri.Token}";
        }

        if (address.Kind == CustodianKind.Node)
        {
            // One client per node and set of certificates: another client certificate is another connection.
            var node = NodeUri.Parse(address.Uri);
            return $"node|{node.BaseAddress}|{node.ClientCertificatePath}|{node.ClientKeyPath}|{node.NodeCaPath}";
        }

        return address.Uri;
    }

    public void Dispose()
    {
        foreach (var lazy in _stores.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Dispose();
            }
        }

        _stores.Clear();
    }
}
