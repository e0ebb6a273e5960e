using ShareVault.Custody.Keys;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;


namespace ShareVault.Custody.Threshold.ProductRsa;

/// <summary>
/// Creates a product-RSA t-of-n key: one RSA key generated inside each custodian's hardware, then
/// one composite public key per quorum. No dealer; no private part exists outside a device.
/// </summary>
public sealed class ProductRsaCeremony(ShareStoreRegistry stores, KeyCatalog catalog, TimeProvider time)
{
    /// <summary>C(n, t) composite keys are published; beyond this many custodians that list grows too long.</summary>
    public const int MaxCustodians = 8;

    public KeyRecord Create(string name, int threshold, int bits, IReadOnlyList<string> custodianUris, IProgress<string>? progress = null)
    {
        var addresses = CeremonyArguments.Validate(catalog, "Product RSA", name, threshold, custodianUris, MaxCustodians);

        // Generate in parallel: key generation is the slow part, and each device works alone.
        var generated = new RsaPublicKey?[addresses.Count];
        var failures = new List<Exception>();
        Parallel.For(0, addresses.Count, i =>
        {
            try
            {
                var address = addresses[i];
                progress?.Report($"generating RSA-{bits} inside {address.Name}");
                generated[i] = stores.Get(address).GenerateRsaKey(address.ObjectLabel, bits);
                progress?.Report($"{address.Name}: key born in hardware ({generated[i]})");
            }
            catch (Exception e) when (e is ShareStoreException or ArgumentException)
            {
                lock (failures)
                {
                    failures.Add(e);
                }
            }
        });

        if (failures.Count > 0)
        {
            RollBack(addresses, generated);
            throw failures[0] is ShareStoreException sse
                ? sse
                : new InvalidOperationException("Key generation failed: " + failures[0].Message, failures[0]);
        }

        var custodians = addresses.Select((a, i) => new CustodianRecord
        {
            Name = a.Name,
            Uri = a.Uri,
            ObjectLabel = a.ObjectLabel,
            Kind = a.Kind,
            Modulus = Base64Url.Encode(BigEndian.ToBytes(generated[i]!.Modulus)),
            Exponent = Base64Url.Encode(BigEndian.ToBytes(generated[i]!.Exponent)),
        }).ToList();

        var record = new KeyRecord
        {
            Name = name,
            Scheme = KeyScheme.ProductRsa,
            Threshold = threshold,
            Bits = bits,
            CreatedAt = time.GetUtcNow(),
            Custodians = custodians,
            Quorums = ProductRsaKey.Quorums(name, [.. addresses.Select(a => a.Name)], threshold),
        };
        catalog.Save(record);
        return record;
    }

    private void RollBack(List<CustodianAddress> addresses, RsaPublicKey?[] generated)
    {
        for (var i = 0; i < addresses.Count; i++)
        {
            if (generated[i] is null)
            {
                continue;
            }

            try
            {
                stores.Get(addresses[i]).DeleteKey(addresses[i].ObjectLabel);
            }
            catch (ShareStoreException)
            {
                // Best effort: the key is unusable without the catalog entry anyway.
            }
        }
    }
}
