using System.Numerics;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold.ProductRsa;

/// <summary>
/// A quorum's public arithmetic, computed once: member keys, N_Q and the CRT coefficients
/// cᵢ = (N_Q/nᵢ)·((N_Q/nᵢ)⁻¹ mod nᵢ), so combining partials is Σ sᵢ·cᵢ mod N_Q.
/// </summary>
internal sealed class QuorumMath
{
    private readonly BigInteger[] _coefficients;

    private QuorumMath(RsaPublicKey composite, IReadOnlyList<RsaPublicKey> memberKeys, BigInteger[] coefficients)
    {
        Composite = composite;
        MemberKeys = memberKeys;
        _coefficients = coefficients;
    }

    public RsaPublicKey Composite { get; }

    public IReadOnlyList<RsaPublicKey> MemberKeys { get; }

    public static QuorumMath For(KeyRecord key, QuorumRecord quorum)
    {
        var memberKeys = quorum.Members.Select(m => ProductRsaKey.MemberKey(key.Custodian(m))).ToList();
        var composite = ProductRsaKey.CompositeKey(key, quorum);
        var coefficients = memberKeys.Select(k =>
        {
            var others = composite.Modulus / k.Modulus;
            return others * IntegerMath.ModInverse(others, k.Modulus) % composite.Modulus;
        }).ToArray();
        return new QuorumMath(composite, memberKeys, coefficients);
    }

    /// <summary>
    /// The unique s mod N_Q with s ≡ sᵢ (mod nᵢ). Each sᵢ was checked (sᵢ^e ≡ EM mod nᵢ), so
    /// s^e ≡ EM mod every nᵢ and hence mod N_Q; checking s mod nᵢ = sᵢ confirms the combination itself
    /// without a full-size public operation.
    /// </summary>
    public BigInteger Combine(IReadOnlyList<BigInteger> partials)
    {
        ArgumentOutOfRangeException.ThrowIfNotEqual(partials.Count, _coefficients.Length);
        var sum = BigInteger.Zero;
        for (var i = 0; i < partials.Count; i++)
        {
            sum += partials[i] * _coefficients[i];
        }

        var signature = sum % Composite.Modulus;
        for (var i = 0; i < partials.Count; i++)
        {
            if (signature % MemberKeys[i].Modulus != partials[i])
            {
                throw new System.Security.Cryptography.CryptographicException("CRT combination is inconsistent; the key record may be damaged");
            }
        }

        return signature;
    }
}
