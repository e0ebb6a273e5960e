using System.Numerics;
using System.Security.Cryptography;
using Nethereum.Util;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;

namespace ShareVault.Service.Chain;

/// <summary>
/// One verification key of a pool key as PoolTreasury sees it: the byte length of the message
/// encoding and the moduli it checks. Shoup: (|N|, [N]); a product-RSA quorum: (|N_Q|, [n_i of
/// its members]), so the contract verifies (s mod n_i)^e = EM (mod n_i) member by member, which by
/// the CRT is s^e = EM (mod N_Q). Public material only.
/// </summary>
public sealed record ChainPoolKey(string Kid, int EmLength, IReadOnlyList<byte[]> Moduli)
{
    /// <summary>keccak256(uint256 emLength || keccak256(n_1) || … || keccak256(n_t)): what the contract stores (PoolTreasury.keyHash).</summary>
    public byte[] Hash
    {
        get
        {
            var packed = new byte[32 * (1 + Moduli.Count)];
            BigEndian.ToBytes(EmLength, 32).CopyTo(packed, 0);
            for (var i = 0; i < Moduli.Count; i++)
            {
                Sha3Keccack.Current.CalculateHash(Moduli[i]).CopyTo(packed, 32 * (i + 1));
            }

            return Sha3Keccack.Current.CalculateHash(packed);
        }
    }

    public PoolKeyParam ToParam() => new() { EmLength = EmLength, Moduli = [.. Moduli] };

    /// <summary>
    /// The contract's signature parts for signature <paramref name="signature"/> under this key:
    /// s itself for one modulus, s mod n_i (as long as n_i) for each quorum member.
    /// </summary>
    public List<byte[]> Parts(ReadOnlySpan<byte> signature)
    {
        if (Moduli.Count == 1)
        {
            return [signature.ToArray()];
        }

        var s = BigEndian.ToInteger(signature);
        return [.. Moduli.Select(n => BigEndian.ToBytes(s % BigEndian.ToInteger(n), n.Length))];
    }

    /// <summary>Every verification key of <paramref name="record"/>: one per product-RSA quorum, or the one Shoup key.</summary>
    public static IReadOnlyList<ChainPoolKey> FromRecord(KeyRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (record.Scheme == KeyScheme.ProductRsa)
        {
            return [.. record.Quorums.Select(q =>
            {
                var composite = ProductRsaKey.CompositeKey(record, q);
                RequireF4(composite);
                return new ChainPoolKey(q.Kid, composite.ByteLength, [.. q.Members.Select(m => BigEndian.ToBytes(ProductRsaKey.MemberKey(record.Custodian(m)).Modulus))]);
            })];
        }

        var (kid, key) = KeyPublication.PublicKeys(record).Single();
        RequireF4(key);
        return [new ChainPoolKey(kid, key.ByteLength, [BigEndian.ToBytes(key.Modulus, key.ByteLength)])];
    }

    private static void RequireF4(RsaPublicKey key)
    {
        if (key.Exponent != 65537)
        {
            throw new ArgumentException("PoolTreasury verifies keys with e = 65537 only");
        }
    }
}

/// <summary>A pool key's signature over a treasury message, ready for the contract's Signature argument.</summary>
public sealed record ChainAuthorisation(string Kid, string HeaderB64, byte[] Signature, ChainPoolKey Key)
{
    public SignatureParam ToParam() => new()
    {
        Header = System.Text.Encoding.ASCII.GetBytes(HeaderB64),
        Key = Key.ToParam(),
        Parts = Key.Parts(Signature),
    };

    /// <summary>
    /// Reads a compact RS256 JWS over <paramref name="payload"/> by one of <paramref name="keys"/>;
    /// null when it is not one (wrong payload, unknown kid, not RS256). Checks the signature locally
    /// first, so a bad one never costs gas.
    /// </summary>
    public static ChainAuthorisation? FromJws(string jws, ReadOnlySpan<byte> payload, IReadOnlyList<ChainPoolKey> keys)
    {
        ArgumentNullException.ThrowIfNull(jws);
        ArgumentNullException.ThrowIfNull(keys);
        if (!Jws.TryParse(jws, out var parts) || parts.Algorithm != "RS256" || !parts.Payload.AsSpan().SequenceEqual(payload))
        {
            return null;
        }

        var key = keys.FirstOrDefault(k => k.Kid == parts.Kid);
        if (key is null)
        {
            return null;
        }

        var modulus = key.Moduli.Aggregate(BigInteger.One, (acc, n) => acc * BigEndian.ToInteger(n));
        if (!Jws.Verify(parts, new RsaPublicKey(modulus, 65537)))
        {
            return null;
        }

        return new ChainAuthorisation(key.Kid, parts.SigningInput[..parts.SigningInput.IndexOf('.', StringComparison.Ordinal)], parts.Signature, key);
    }
}

/// <summary>
/// The compact messages PoolTreasury verifies signatures over. The payout layout lives in one place,
/// <see cref="TreasuryPayoutMessage"/> (ShareVault.Claims), which custody nodes parse too.
/// </summary>
public static class TreasuryMessages
{
    /// <summary>A claim as the contract names it: SHA-256 of the UTF-8 claim id.</summary>
    public static byte[] ClaimHash(string claimId) => TreasuryPayoutMessage.HashClaim(claimId);

    /// <summary>A member as a deposit names it: SHA-256 of the UTF-8 member id.</summary>
    public static byte[] MemberRef(string memberId) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(memberId));

    /// <summary>"SVP1" || uint64 chain id || treasury || claim || token || to || uint128 amount (120 bytes).</summary>
    public static byte[] Payout(long chainId, string treasury, byte[] claimHash, string token, string to, BigInteger amount) =>
        new TreasuryPayoutMessage(chainId, treasury, claimHash, token, to, amount).Encode();

    /// <summary>20 bytes of a 0x-prefixed hex address.</summary>
    public static byte[] Address(string address) => TreasuryPayoutMessage.AddressBytes(address);

    public static bool IsAddress(string? text) => text is not null && PoolRegistry.IsChainAddress(text);
}
