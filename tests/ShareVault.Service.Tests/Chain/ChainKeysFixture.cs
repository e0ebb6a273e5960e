using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware.Custodians;
using ShareVault.Service.Chain;
using ShareVault.TestSupport;

namespace ShareVault.Service.Tests.Chain;

/// <summary>
/// Real pool keys for the chain tests, made by the project's ceremonies on SoftHSM tokens of their
/// own (chain-a..c: a 2-of-3 product-RSA key of 2048-bit keys born in the tokens; chain-d..f: a
/// 2-of-3 Shoup key of 2048 bits dealt from the fixed test safe primes), and a spare product-RSA
/// key on the same tokens for rotation. One data folder per collection.
/// </summary>
public sealed class ChainKeysFixture : IDisposable
{
    public ChainKeysFixture()
    {
        DataDir = Path.Combine(Path.GetTempPath(), "sv-chain-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(DataDir);
        Stores = new ShareStoreRegistry(DataDir);
        Catalog = new KeyCatalog(DataDir);
        var hsm = SoftHsm.Shared;
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var product = "chain-prsa-" + suffix;
        Product = new ProductRsaCeremony(Stores, Catalog, TimeProvider.System).Create(
            product, 2, 2048, [hsm.Uri("chain-a", product), hsm.Uri("chain-b", product), hsm.Uri("chain-c", product)]);
        var next = "chain-next-" + suffix;
        Next = new ProductRsaCeremony(Stores, Catalog, TimeProvider.System).Create(
            next, 2, 2048, [hsm.Uri("chain-a", next), hsm.Uri("chain-b", next), hsm.Uri("chain-c", next)]);
        var shoup = "chain-shoup-" + suffix;
        Shoup = new ShoupCeremony(Stores.Get, Catalog, TimeProvider.System, new VectorSafePrimes()).Create(
            shoup, 2, 2048, [hsm.Uri("chain-d", shoup), hsm.Uri("chain-e", shoup), hsm.Uri("chain-f", shoup)]);
        Signer = new ThresholdSigner(Stores);
    }

    public string DataDir { get; }

    public ShareStoreRegistry Stores { get; }

    public KeyCatalog Catalog { get; }

    public KeyRecord Product { get; }

    public KeyRecord Next { get; }

    public KeyRecord Shoup { get; }

    public ThresholdSigner Signer { get; }

    public KeyRecord Key(string scheme) => scheme == "shoup" ? Shoup : Product;

    /// <summary>A compact JWS by <paramref name="key"/>'s custodians over <paramref name="payload"/>, as the pool signer makes it.</summary>
    public async Task<ChainAuthorisation> AuthoriseAsync(KeyRecord key, byte[] payload)
    {
        var (jws, _) = await Signer.SignJwsAsync(key, payload, null, CancellationToken.None);
        return ChainAuthorisation.FromJws(jws, payload, ChainPoolKey.FromRecord(key))
            ?? throw new InvalidOperationException("the signer's JWS does not verify");
    }

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

    /// <summary>The public test safe primes of tests/ShareVault.Custody.Tests/Vectors (never a real key).</summary>
    private sealed class VectorSafePrimes : ISafePrimeSource
    {
        public (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken) =>
            SafePrimeVectors.For(modulusBits);
    }
}

/// <summary>The chain test classes share the keys (making RSA keys in SoftHSM is the slow part).</summary>
[CollectionDefinition(Name)]
public sealed class ChainKeysGroup : ICollectionFixture<ChainKeysFixture>
{
    public const string Name = "chain keys";
}

/// <summary>One anvil per test class, on the current (default) gas schedule.</summary>
public sealed class AnvilDefault : IDisposable
{
    public AnvilProcess Anvil { get; } = AnvilProcess.Start();

    public void Dispose() => Anvil.Dispose();
}

/// <summary>One anvil per test class, on the Prague gas schedule (EIP-2565 modexp pricing).</summary>
public sealed class AnvilPrague : IDisposable
{
    public AnvilProcess Anvil { get; } = AnvilProcess.Start("prague");

    public void Dispose() => Anvil.Dispose();
}
