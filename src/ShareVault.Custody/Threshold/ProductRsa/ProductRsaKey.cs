using System.Numerics;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold.ProductRsa;

/// <summary>
/// Product RSA (J. Lloyd, "Simple and hardware friendly RSA threshold signatures", 2019): each
/// custodian holds an ordinary RSA key born in its hardware; a quorum Q signs under
/// N_Q = ∏ nᵢ with the common exponent e.
/// </summary>
public static class ProductRsaKey
{
    public static readonly BigInteger PublicExponent = 65537;

    /// <summary>All t-subsets of the custodians, in creation order (lexicographic by index).</summary>
    public static IReadOnlyList<QuorumRecord> Quorums(string keyName, IReadOnlyList<string> custodians, int threshold)
    {
        var result = new List<QuorumRecord>();
        foreach (var subset in Subsets(custodians.Count, threshold))
        {
            var members = subset.Select(i => custodians[i]).ToList();
            result.Add(new QuorumRecord { Kid = $"{keyName}/{string.Join('+', members)}", Members = members });
        }

        return result;
    }

    /// <summary>k-subsets of {0..n-1} in lexicographic order.</summary>
    public static IEnumerable<int[]> Subsets(int n, int k)
    {
        var index = Enumerable.Range(0, k).ToArray();
        while (true)
        {
            yield return (int[])index.Clone();
            var i = k - 1;
            while (i >= 0 && index[i] == n - k + i)
            {
                i--;
            }

            if (i < 0)
            {
                yield break;
            }

            index[i]++;
            for (var j = i + 1; j < k; j++)
            {
                index[j] = index[j - 1] + 1;
            }
        }
    }

    public static RsaPublicKey MemberKey(CustodianRecord custodian) =>
        RsaPublicKey.FromBytes(Base64Url.Decode(custodian.Modulus!), Base64Url.Decode(custodian.Exponent!));

    /// <summary>The quorum's composite public key (∏ nᵢ, e).</summary>
    public static RsaPublicKey CompositeKey(KeyRecord key, QuorumRecord quorum)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(quorum);
        var modulus = quorum.Members.Aggregate(BigInteger.One, (acc, m) => acc * MemberKey(key.Custodian(m)).Modulus);
        return new RsaPublicKey(modulus, PublicExponent);
    }
}
