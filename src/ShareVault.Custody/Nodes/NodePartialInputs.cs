using System.Numerics;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;

namespace ShareVault.Custody.Nodes;

/// <summary>
/// The value a custody node raises, computed by the node from the bytes the threshold key signs
/// (never taken from the coordinator): product RSA EM = EMSA-PKCS1-v1_5(SHA-256) at |N_Q| (RFC 8017
/// §9.2) reduced mod the node's own nᵢ; Shoup z = x^(2Δ) mod N with x = EMSA-PKCS1-v1_5 at |N|
/// (Shoup, Eurocrypt 2000, §2).
/// </summary>
public static class NodePartialInputs
{
    /// <summary>EM mod nᵢ for the member <paramref name="own"/> of the quorum with member keys <paramref name="quorum"/>; null when <paramref name="own"/> is not one of them.</summary>
    public static BigInteger? ProductRsa(ReadOnlySpan<byte> signingInput, IReadOnlyList<RsaPublicKey> quorum, RsaPublicKey own)
    {
        ArgumentNullException.ThrowIfNull(quorum);
        ArgumentNullException.ThrowIfNull(own);
        if (!quorum.Contains(own) || quorum.Distinct().Count() != quorum.Count)
        {
            return null;
        }

        var composite = quorum.Aggregate(BigInteger.One, (acc, k) => acc * k.Modulus);
        var em = BigEndian.ToInteger(Pkcs1Encoding.EncodeSha256(signingInput, BigEndian.ByteLength(composite)));
        return em % own.Modulus;
    }

    /// <summary>z = x^(2Δ) mod N, Δ = players!.</summary>
    public static BigInteger Shoup(ReadOnlySpan<byte> signingInput, ShoupShareParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var x = BigEndian.ToInteger(Pkcs1Encoding.EncodeSha256(signingInput, BigEndian.ByteLength(parameters.Modulus)));
        return ShoupMath.PartialBase(x, ShoupMath.Delta(parameters.Players), parameters.Modulus);
    }
}
