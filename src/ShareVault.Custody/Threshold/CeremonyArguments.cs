using ShareVault.Custody.Keys;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;


namespace ShareVault.Custody.Threshold;

/// <summary>The checks every key ceremony makes before touching any hardware.</summary>
internal static class CeremonyArguments
{
    /// <summary>
    /// Validates name, custodian count and threshold, refuses an existing key and a custodian named
    /// twice, and returns the parsed custodian addresses in the given order.
    /// </summary>
    public static List<CustodianAddress> Validate(KeyCatalog catalog, string scheme, string name, int threshold, IReadOnlyList<string> custodianUris, int maxCustodians)
    {
        Identifier.Validate(name, "Key name", nameof(name));
        ArgumentNullException.ThrowIfNull(custodianUris);
        if (custodianUris.Count < 1 || custodianUris.Count > maxCustodians)
        {
            throw new ArgumentException($"{scheme} takes 1 to {maxCustodians} custodians, not {custodianUris.Count}", nameof(custodianUris));
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

        return addresses;
    }
}
