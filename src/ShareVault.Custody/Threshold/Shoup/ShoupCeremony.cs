using System.Numerics;
using System.Security.Cryptography;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>A custodian refused by the ceremony, by name, with the reason (never a secret).</summary>
internal sealed record ProbeFailure(string Custodian, string Reason)
{
    public override string ToString() => $"{Custodian}: {Reason}";
}

/// <summary>The ceremony stopped before any share of the real key left the dealer.</summary>
internal sealed class ShoupCeremonyException(string message, IReadOnlyList<ProbeFailure> failures)
    : InvalidOperationException(message + (failures.Count == 0 ? string.Empty : ": " + string.Join("; ", failures)))
{
    public IReadOnlyList<ProbeFailure> Failures { get; } = failures;
}

/// <summary>
/// The Shoup dealer ceremony (Shoup, "Practical Threshold Signatures", §2): probe every token,
/// make N from two safe primes, Shamir-share d over m = p′q′, verification values vᵢ = v^sᵢ,
/// import each share wrapped into its custodian's token, check vᵢ back through the token, and save
/// only public parts. A failure after import removes every share already placed.
/// </summary>
public sealed class ShoupCeremony(Func<CustodianAddress, IShareStore> open, KeyCatalog catalog, TimeProvider time, ISafePrimeSource primes)
{
    /// <summary>Δ = n! and the Lagrange numerators grow with n; custody groups are small.</summary>
    public const int MaxCustodians = 20;

    /// <summary>The DH generator written into the PKCS#8 share; SoftHSM computes z^x mod p regardless of it (docs/shoup.md).</summary>
    public static readonly BigInteger ShareGenerator = 2;

    public ShoupCeremony(ShareStoreRegistry stores, KeyCatalog catalog, TimeProvider time)
        : this(stores.Get, catalog, time, new SafePrimeGenerator())
    {
    }

    public KeyRecord Create(string name, int threshold, int bits, IReadOnlyList<string> custodianUris, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        if (bits is not (2048 or 3072 or 4096))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Shoup RSA key size must be 2048, 3072 or 4096 bits");
        }

        var addresses = CeremonyArguments.Validate(catalog, "Shoup RSA", name, threshold, custodianUris, MaxCustodians);

        // 1. Probe every token with a throwaway share before anything of the real key exists.
        var stores = ProbeAll(addresses, bits, progress);

        // 2. Deal. The secret values live only inside this block.
        progress?.Report($"generating two safe primes for RSA-{bits} (seconds to a minute)");
        var (p, q) = primes.Generate(bits, progress, cancellationToken);
        var dealing = ShoupDealer.Deal(p, q, threshold, addresses.Count, ShoupDealer.DefaultExponent);
        p = q = BigInteger.Zero;
        if (dealing.Modulus.GetBitLength() != bits)
        {
            throw new InvalidOperationException($"Safe primes gave a {dealing.Modulus.GetBitLength()}-bit modulus, not {bits}");
        }

        // 3. Import every share wrapped, then check vᵢ through the token.
        var imported = new bool[addresses.Count];
        var failures = new List<ProbeFailure>();
        Parallel.For(0, addresses.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var address = addresses[i];
            try
            {
                var store = stores[i];
                WrappedShare Wrap(RsaPublicKey key) => ShareWrapping.Wrap(key, dealing.Modulus, ShareGenerator, dealing.Shares[i]);
                if (store is IPinnedShoupImport node)
                {
                    node.ImportShoupShare(address.ObjectLabel, Wrap, new ShoupShareParameters(dealing.Modulus, dealing.Exponent, addresses.Count, dealing.VerificationBase));
                }
                else
                {
                    store.ImportShoupShare(address.ObjectLabel, Wrap, persistent: true);
                }

                imported[i] = true;
                var check = BigEndian.ToInteger(store.ShoupPartial(address.ObjectLabel, BigEndian.ToBytes(dealing.VerificationBase, ByteLength(dealing.Modulus))));
                if (check != dealing.VerificationValues[i])
                {
                    throw new CryptographicException("the imported share does not reproduce its verification value");
                }

                progress?.Report($"{address.Name}: share {i + 1} imported wrapped and checked");
            }
            catch (Exception e) when (e is ShareStoreException or CryptographicException)
            {
                lock (failures)
                {
                    failures.Add(new ProbeFailure(address.Name, e.Message));
                }
            }
        });

        // The dealer's copies are no longer needed. BigInteger is immutable: drop the references so the
        // next collections can reuse that memory (see docs/shoup.md on what this does not guarantee).
        Array.Clear(dealing.Shares);
        if (failures.Count > 0)
        {
            RollBack(addresses, stores, imported);
            throw new ShoupCeremonyException($"Key '{name}' was not created; shares already placed were removed", failures);
        }

        var custodians = addresses.Select((a, i) => new CustodianRecord
        {
            Name = a.Name,
            Uri = a.Uri,
            ObjectLabel = a.ObjectLabel,
            Kind = a.Kind,
            ShareIndex = i + 1,
            VerificationValue = Base64Url.Encode(BigEndian.ToBytes(dealing.VerificationValues[i])),
        }).ToList();
        var record = new KeyRecord
        {
            Name = name,
            Scheme = KeyScheme.ShoupRsa,
            Threshold = threshold,
            Bits = bits,
            CreatedAt = time.GetUtcNow(),
            Custodians = custodians,
            Shoup = new ShoupPublicRecord
            {
                Modulus = Base64Url.Encode(BigEndian.ToBytes(dealing.Modulus)),
                Exponent = Base64Url.Encode(BigEndian.ToBytes(dealing.Exponent)),
                Players = addresses.Count,
                VerificationBase = Base64Url.Encode(BigEndian.ToBytes(dealing.VerificationBase)),
            },
        };
        catalog.Save(record);
        return record;
    }

    /// <summary>
    /// Opens every custodian and checks, with a throwaway share of a throwaway modulus of the real
    /// size, that its token imports a wrapped share and computes z^s mod M correctly. Throws naming
    /// every token that refused or computed wrong; nothing of the real key exists yet.
    /// </summary>
    internal IShoupShareStore[] ProbeAll(IReadOnlyList<CustodianAddress> addresses, int bits, IProgress<string>? progress)
    {
        var stores = new IShoupShareStore[addresses.Count];
        var failures = new List<ProbeFailure>();
        Parallel.For(0, addresses.Count, i =>
        {
            var address = addresses[i];
            var reason = Probe(address, bits, out var store);
            if (reason is null)
            {
                stores[i] = store!;
                progress?.Report($"{address.Name}: probe passed (throwaway share computed correctly)");
                return;
            }

            lock (failures)
            {
                failures.Add(new ProbeFailure(address.Name, reason));
            }
        });

        if (failures.Count > 0)
        {
            throw new ShoupCeremonyException("Probe refused custodian(s); nothing of the real key was sent to any token",
                [.. failures.OrderBy(f => f.Custodian, StringComparer.Ordinal)]);
        }

        return stores;
    }

    private string? Probe(CustodianAddress address, int bits, out IShoupShareStore? shoupStore)
    {
        shoupStore = null;
        IShareStore store;
        try
        {
            store = open(address);
        }
        catch (ShareStoreException e)
        {
            return $"cannot be opened: {e.Message}";
        }

        if (store is not IShoupShareStore shoup)
        {
            return "its hardware cannot hold a Shoup share (PKCS#11 tokens only)";
        }

        // A throwaway odd modulus M of the real size and a full-size throwaway exponent.
        var modulus = ShoupDealer.RandomBelow(BigInteger.One << bits) | (BigInteger.One << (bits - 1)) | BigInteger.One;
        var share = ShoupDealer.RandomBelow(modulus);
        var z = ShoupDealer.RandomBelow(modulus - 3) + 2;
        var label = $"probe-{Guid.NewGuid():N}"[..18];
        try
        {
            shoup.ImportShoupShare(label, key => ShareWrapping.Wrap(key, modulus, ShareGenerator, share), persistent: false);
            var partial = BigEndian.ToInteger(shoup.ShoupPartial(label, BigEndian.ToBytes(z, ByteLength(modulus))));
            if (partial != BigInteger.ModPow(z, share, modulus))
            {
                return "computes Shoup partials wrongly (a throwaway share gave a wrong z^s mod M)";
            }
        }
        catch (ShareStoreException e)
        {
            return $"refused the probe: {e.Message}";
        }
        finally
        {
            try
            {
                shoup.DeleteKey(label);
            }
            catch (ShareStoreException)
            {
                // A session object: it goes with the session anyway.
            }
        }

        shoupStore = shoup;
        return null;
    }

    private static void RollBack(List<CustodianAddress> addresses, IShoupShareStore[] stores, bool[] imported)
    {
        for (var i = 0; i < addresses.Count; i++)
        {
            if (!imported[i])
            {
                continue;
            }

            try
            {
                stores[i].DeleteKey(addresses[i].ObjectLabel);
            }
            catch (ShareStoreException)
            {
                // Best effort: without the catalog entry the share is useless.
            }
        }
    }

    private static int ByteLength(BigInteger value) => BigEndian.ByteLength(value);
}
