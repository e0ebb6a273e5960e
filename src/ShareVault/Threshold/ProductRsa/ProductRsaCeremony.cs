using ShareVault.Hardware;
using ShareVault.Keys;

namespace ShareVault.Threshold.ProductRsa;

/// <summary>
/// Creates a product-RSA t-of-n key: one RSA key generated inside each custodian's hardware, then
/// one composite public key per quorum. No dealer; no private part exists outside a device.
/// </summary>
internal sealed class ProductRsaCeremony(ShareStoreRegistry stores, KeyCatalog catalog, TimeProvider time)
{
    /// <summary>C(n, t) composite keys are published; beyond this many custodians that list grows too long.</summary>
    public const int MaxCustodians = 8;

    public KeyRecord Create(string name, int threshold, int bits, IReadOnlyList<string> custodianUris, IProgress<string>? progress = null)
    {
        KeyCatalog.ValidateName(name);
        ArgumentNullException.ThrowIfNull(custodianUris);
        if (custodianUris.Count is < 1 or > MaxCustodians)
        {
            throw new ArgumentException($"Product RSA takes 1 to {MaxCustodians} custodians, not {custodianUris.Count}", nameof(custodianUris));
        }

        if (threshold < 1 || threshold > custodianUris.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(threshold), threshold, $"Threshold must be between 1 and the number of custodians ({custodianUris.Count})");
        }

        if (catalog.Exists(name))
        {
            throw new KeyCatalogException($"A key named '{name}' already exists in {catalog.DataDir}");
        }

        var addresses = custodianUris.Select(u => CustodianAddress.Parse(u, name)).ToList();
        var duplicate = addresses.GroupBy(a => a.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"Custodian '{duplicate.Key}' is named twice; each custodian holds one share", nameof(custodianUris));
        }

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
            Scheme = KeyRecord.ProductRsa,
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
