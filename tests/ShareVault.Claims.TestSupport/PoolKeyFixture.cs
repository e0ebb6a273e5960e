using ShareVault.Claims.Payouts;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Service;
using ShareVault.TestSupport;


namespace ShareVault.Claims.TestSupport;

/// <summary>
/// One real 2-of-3 product-RSA pool key whose three RSA keys are born inside SoftHSM tokens,
/// shared by the claims tests (creating RSA keys in SoftHSM is the slow part). Its tokens (pool-*)
/// are this collection's alone: its tests run one at a time, so the service processes that some
/// start sign with them while nothing else uses them (see <see cref="SoftHsm.Labels"/>).
/// </summary>
public sealed class PoolKeyFixture : IDisposable
{
    public PoolKeyFixture()
    {
        DataDir = Path.Combine(Path.GetTempPath(), "sv-claims-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(DataDir);
        KeyName = "pool-" + Guid.NewGuid().ToString("N")[..10];
        var hsm = SoftHsm.Shared;
        Stores = new ShareStoreRegistry(DataDir);
        Catalog = new KeyCatalog(DataDir);
        new ProductRsaCeremony(Stores, Catalog, TimeProvider.System).Create(
            KeyName, 2, 2048, [hsm.Uri("pool-a", KeyName), hsm.Uri("pool-b", KeyName), hsm.Uri("pool-c", KeyName)]);
    }

    public string DataDir { get; }

    public string KeyName { get; }

    public ShareStoreRegistry Stores { get; }

    public KeyCatalog Catalog { get; }

    public IPoolSigner Signer() => new ThresholdPoolSigner(Catalog, new ThresholdSigner(Stores));

    /// <summary>A fresh database path for one test.</summary>
    public string NewDatabasePath() => Path.Combine(DataDir, "db-" + Guid.NewGuid().ToString("N")[..10], "claims.db");

    public void Dispose()
    {
        Stores.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
