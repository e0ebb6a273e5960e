using System.Numerics;
using System.Security.Cryptography;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.TestSupport;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

/// <summary>A data folder, a store registry and helpers for Shoup keys on the shared SoftHSM tokens.</summary>
public sealed class ShoupFixture : IDisposable
{
    public ShoupFixture()
    {
        DataDir = Path.Combine(Path.GetTempPath(), $"shoup-{Guid.NewGuid():N}"[..20]);
        Directory.CreateDirectory(DataDir);
        Stores = new ShareStoreRegistry(DataDir);
        Catalog = new KeyCatalog(DataDir);
    }

    public string DataDir { get; }

    internal ShareStoreRegistry Stores { get; }

    internal KeyCatalog Catalog { get; }

    /// <summary>A key dealt from the fixed test primes into the given tokens (unique key name and labels).</summary>
    internal KeyRecord CreateKey(int threshold, int bits, params string[] tokens)
    {
        var name = $"shoup-{Guid.NewGuid():N}"[..16];
        var uris = tokens.Select(t => SoftHsm.Shared.Uri(t, name)).ToList();
        return new ShoupCeremony(Stores.Get, Catalog, TimeProvider.System, new FixedSafePrimes()).Create(name, threshold, bits, uris);
    }

    internal static CustodianAddress Address(CustodianRecord c) => new(c.Name, c.Uri, c.ObjectLabel, c.Kind);

    /// <summary>RSASSA-PKCS1-v1_5 SHA-256 verification with .NET's RSA.</summary>
    internal static bool VerifiesWithDotnet(KeyRecord key, byte[] message, byte[] signature)
    {
        using var rsa = KeyPublication.PublicKeys(key).Single().Key.ToRsa();
        return rsa.VerifyData(message, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
    }

    /// <summary>Verification with <c>openssl dgst -sha256 -verify</c> on the PEM that <c>key public</c> prints.</summary>
    internal async Task<bool> VerifiesWithOpensslAsync(KeyRecord key, byte[] message, byte[] signature)
    {
        var folder = Path.Combine(DataDir, $"openssl-{Guid.NewGuid():N}"[..16]);
        Directory.CreateDirectory(folder);
        var pem = Path.Combine(folder, "pub.pem");
        var msg = Path.Combine(folder, "msg");
        var sig = Path.Combine(folder, "sig");
        await File.WriteAllTextAsync(pem, KeyPublication.ToPem(KeyPublication.PublicKeys(key)));
        await File.WriteAllBytesAsync(msg, message);
        await File.WriteAllBytesAsync(sig, signature);
        var result = await ProcessRunner.RunAsync("openssl", ["dgst", "-sha256", "-verify", pem, "-signature", sig, msg]);
        return result.ExitCode == 0 && result.StdOut.Contains("Verified OK", StringComparison.Ordinal);
    }

    /// <summary>Removes the key's share objects from their tokens.</summary>
    internal void Delete(KeyRecord key)
    {
        foreach (var c in key.Custodians)
        {
            Stores.Get(Address(c)).DeleteKey(c.ObjectLabel);
        }
    }

    internal static BigInteger Modulus(KeyRecord key) => KeyPublication.PublicKeys(key).Single().Key.Modulus;

    public void Dispose()
    {
        Stores.Dispose();
        Directory.Delete(DataDir, recursive: true);
    }
}
