using System.Numerics;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>
/// The public parameters of a Shoup share, told by the dealer at import: N, e, the number of
/// players n (Δ = n!) and the verification base v. A custody node pins them so it computes
/// z = x^(2Δ) mod N itself and raises nothing but z and v.
/// </summary>
public sealed record ShoupShareParameters(BigInteger Modulus, BigInteger Exponent, int Players, BigInteger VerificationBase);

/// <summary>A custodian that must be told a share's public parameters when the share is imported (a custody node).</summary>
internal interface IPinnedShoupImport
{
    void ImportShoupShare(string objectLabel, Func<RsaPublicKey, WrappedShare> wrap, ShoupShareParameters parameters);
}
