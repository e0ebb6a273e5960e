using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using ShareVault.Hardware;

namespace ShareVault.Claims.Payouts;

/// <summary>
/// The 120-byte message a pool treasury's payout signature covers (contracts/PoolTreasury.sol,
/// <c>payoutMessage</c>): <c>"SVP1" || uint64 chain id || treasury (20) || claim (32) || token (20)
/// || to (20) || uint128 amount</c>, all big-endian as <c>abi.encodePacked</c> writes them; claim is
/// SHA-256 of the UTF-8 claim id. The one C# spelling of the layout: the service builds it (and
/// checks the contract's own <c>payoutMessage</c> agrees), custody nodes parse it before signing.
/// Addresses are kept as lower-case <c>0x</c> hex.
/// </summary>
public sealed record TreasuryPayoutMessage(long ChainId, string Treasury, byte[] ClaimHash, string Token, string To, BigInteger Amount)
{
    public const int Length = 120;

    private static readonly byte[] Tag = "SVP1"u8.ToArray();

    /// <summary>A claim as the contract names it: SHA-256 of the UTF-8 claim id.</summary>
    public static byte[] HashClaim(string claimId)
    {
        ArgumentNullException.ThrowIfNull(claimId);
        return SHA256.HashData(Encoding.UTF8.GetBytes(claimId));
    }

    /// <summary>The message's bytes; throws on misuse (an address that is not 20 bytes of hex, a claim hash not 32 bytes, an amount outside uint128).</summary>
    public byte[] Encode()
    {
        ArgumentNullException.ThrowIfNull(ClaimHash);
        ArgumentOutOfRangeException.ThrowIfNotEqual(ClaimHash.Length, 32);
        ArgumentOutOfRangeException.ThrowIfNegative(ChainId);
        if (Amount.Sign < 0 || Amount >= BigInteger.One << 128)
        {
            throw new ArgumentOutOfRangeException(nameof(Amount), "A payout amount must fit 128 bits");
        }

        var message = new byte[Length];
        Tag.CopyTo(message, 0);
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(4), (ulong)ChainId);
        AddressBytes(Treasury).CopyTo(message, 12);
        ClaimHash.CopyTo(message, 32);
        AddressBytes(Token).CopyTo(message, 64);
        AddressBytes(To).CopyTo(message, 84);
        BigEndian.ToBytes(Amount, 16).CopyTo(message, 104);
        return message;
    }

    /// <summary>Parses untrusted bytes: null unless exactly 120 bytes starting with "SVP1" (a chain id above 2^63 − 1 is refused too).</summary>
    public static TreasuryPayoutMessage? TryRead(ReadOnlySpan<byte> message)
    {
        if (message.Length != Length || !message[..4].SequenceEqual(Tag))
        {
            return null;
        }

        var chainId = BinaryPrimitives.ReadUInt64BigEndian(message[4..]);
        if (chainId > long.MaxValue)
        {
            return null;
        }

        return new TreasuryPayoutMessage((long)chainId, Address(message.Slice(12, 20)), message.Slice(32, 32).ToArray(), Address(message.Slice(64, 20)), Address(message.Slice(84, 20)),
            BigEndian.ToInteger(message.Slice(104, 16)));
    }

    /// <summary>Whether the message starts with the payout tag (binary, never a JSON payload the pool key also signs).</summary>
    public static bool IsTagged(ReadOnlySpan<byte> message) => message.Length >= 4 && message[..4].SequenceEqual(Tag);

    /// <summary>20 bytes of a 0x-prefixed hex address (either case).</summary>
    public static byte[] AddressBytes(string address)
    {
        if (address is null || !Ledger.PoolRegistry.IsChainAddress(address))
        {
            throw new ArgumentException($"'{address}' is not a 0x-prefixed 20-byte hex address");
        }

        return Convert.FromHexString(address.AsSpan(2));
    }

    /// <summary>Two addresses are one when their bytes are (EIP-55 checksum case aside).</summary>
    public static bool SameAddress(string? a, string? b) =>
        a is not null && b is not null && Ledger.PoolRegistry.IsChainAddress(a) && Ledger.PoolRegistry.IsChainAddress(b) && string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    private static string Address(ReadOnlySpan<byte> bytes) => "0x" + Convert.ToHexStringLower(bytes);
}
