using System.Numerics;
using System.Security.Cryptography;
using ShareVault.Claims.Ledger;
using ShareVault.Custody.Keys;
using ShareVault.Service.Chain;
using Xunit.Abstractions;

namespace ShareVault.Service.Tests.Chain;

/// <summary>
/// PoolTreasury on a real anvil, with signatures from the project's threshold signers on SoftHSM.
/// Run twice: on anvil's default (current mainnet) gas schedule and on Prague's. Every test
/// deploys its own token and treasury, so tests share nothing on chain.
/// </summary>
public abstract class TreasuryContractTests(ChainKeysFixture keys, AnvilProcess anvil, ITestOutputHelper output)
{
    private const long Cap = 1_000_000_000; // 1,000 svUSD (6 decimals)
    private const long Amount = 250_000_000;
    private static readonly string Member = Accounts.Address(AnvilProcess.MemberAccountKeys[0]);

    public static TheoryData<string> Schemes => ["product-rsa", "shoup"];

    public static TheoryData<string, string> Tampering => new()
    {
        { "product-rsa", "signature" }, { "product-rsa", "amount" }, { "product-rsa", "recipient" }, { "product-rsa", "claim" }, { "product-rsa", "chain id" },
        { "shoup", "signature" }, { "shoup", "amount" }, { "shoup", "recipient" }, { "shoup", "claim" }, { "shoup", "chain id" },
    };

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task A_valid_threshold_signature_pays_the_member(string scheme)
    {
        var (client, token) = await DeployAsync(keys.Key(scheme));
        var claim = TreasuryMessages.ClaimHash("claim-" + Guid.NewGuid().ToString("N"));
        var before = await client.BalanceAsync(token, Member, default);
        var auth = await keys.AuthoriseAsync(keys.Key(scheme), TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, Member, Amount));

        var tx = await client.PayoutAsync(claim, token, Member, Amount, auth.ToParam(), default);

        Assert.True(tx.Succeeded, tx.ToString());
        Assert.Equal(before + Amount, await client.BalanceAsync(token, Member, default));
        Assert.True(await client.IsPaidAsync(claim, default));
        var paid = Assert.Single(await client.PayoutsAsync(default));
        Assert.Equal(claim, paid.ClaimHash);
        Assert.Equal(Member, paid.To, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(new BigInteger(Amount), paid.Amount);
        output.WriteLine($"{scheme} payout on {anvil.Hardfork ?? "default"} schedule: {tx.GasUsed} gas ({auth.Key.Moduli.Count} moduli, EM {auth.Key.EmLength} bytes)");
    }

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task A_tampered_payout_reverts(string scheme, string tampered)
    {
        var (client, token) = await DeployAsync(keys.Key(scheme));
        var claim = TreasuryMessages.ClaimHash("claim-" + Guid.NewGuid().ToString("N"));
        var chainId = tampered == "chain id" ? 1 : client.ChainId;
        var auth = (await keys.AuthoriseAsync(keys.Key(scheme), TreasuryMessages.Payout(chainId, client.Address, claim, token, Member, Amount))).ToParam();
        var (sentClaim, to, amount) = (claim, Member, (BigInteger)Amount);
        switch (tampered)
        {
            case "signature":
                auth.Parts[^1][^1] ^= 0x01;
                break;
            case "amount":
                amount += 1;
                break;
            case "recipient":
                to = Accounts.Address(AnvilProcess.MemberAccountKeys[1]);
                break;
            case "claim":
                sentClaim = TreasuryMessages.ClaimHash("another-claim");
                break;
        }

        var simulated = await client.PayoutAsync(sentClaim, token, to, amount, auth, default);
        var sent = await client.PayoutAsync(sentClaim, token, to, amount, auth, default, simulate: false);

        Assert.Equal("BadSignature", simulated.Error);
        Assert.False(sent.Succeeded, "the tampered payout was mined successfully");
        Assert.NotNull(sent.TxHash);
        Assert.Equal(BigInteger.Zero, await client.BalanceAsync(token, to, default) - (to == Member ? 1 : 0));
        Assert.False(await client.IsPaidAsync(sentClaim, default));
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task A_replayed_payout_reverts(string scheme)
    {
        var (client, token) = await DeployAsync(keys.Key(scheme));
        var claim = TreasuryMessages.ClaimHash("claim-" + Guid.NewGuid().ToString("N"));
        var auth = (await keys.AuthoriseAsync(keys.Key(scheme), TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, Member, Amount))).ToParam();
        Assert.True((await client.PayoutAsync(claim, token, Member, Amount, auth, default)).Succeeded);

        var again = await client.PayoutAsync(claim, token, Member, Amount, auth, default);
        var forced = await client.PayoutAsync(claim, token, Member, Amount, auth, default, simulate: false);

        Assert.Equal("AlreadyPaid", again.Error);
        Assert.False(forced.Succeeded);
        Assert.Equal(new BigInteger(Amount + 1), await client.BalanceAsync(token, Member, default));
    }

    [Fact]
    public async Task A_payout_above_the_cap_reverts_even_when_signed()
    {
        var (client, token) = await DeployAsync(keys.Shoup);
        var claim = TreasuryMessages.ClaimHash("claim-" + Guid.NewGuid().ToString("N"));
        var auth = (await keys.AuthoriseAsync(keys.Shoup, TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, Member, Cap + 1))).ToParam();

        var refused = await client.PayoutAsync(claim, token, Member, Cap + 1, auth, default);
        var forced = await client.PayoutAsync(claim, token, Member, Cap + 1, auth, default, simulate: false);

        Assert.Equal("AboveCap", refused.Error);
        Assert.False(forced.Succeeded);
        Assert.False(await client.IsPaidAsync(claim, default));
    }

    [Fact]
    public async Task Rotation_needs_the_current_keys_signature_and_retires_the_old_key()
    {
        var (client, token) = await DeployAsync(keys.Product);
        var next = ChainPoolKey.FromRecord(keys.Next);
        var message = await client.RotationMessageAsync(2 * Cap, next, default);

        // The incoming key cannot authorise its own arrival, nor can a tampered current signature.
        var byNewKey = await client.RotateAsync(2 * Cap, next, (await keys.AuthoriseAsync(keys.Next, message)).ToParam(), default);
        var byWrongCap = await client.RotateAsync(3 * Cap, next, (await keys.AuthoriseAsync(keys.Product, message)).ToParam(), default);
        Assert.Equal("UnknownKey", byNewKey.Error);
        Assert.Equal("BadSignature", byWrongCap.Error);
        Assert.Equal(1, await client.EpochAsync(default));

        var rotated = await client.RotateAsync(2 * Cap, next, (await keys.AuthoriseAsync(keys.Product, message)).ToParam(), default);
        Assert.True(rotated.Succeeded, rotated.ToString());
        Assert.Equal(2, await client.EpochAsync(default));
        Assert.Equal(new BigInteger(2 * Cap), await client.PayoutCapAsync(default));

        var claim = TreasuryMessages.ClaimHash("claim-" + Guid.NewGuid().ToString("N"));
        var payout = TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, Member, Amount);
        var old = await client.PayoutAsync(claim, token, Member, Amount, (await keys.AuthoriseAsync(keys.Product, payout)).ToParam(), default);
        var current = await client.PayoutAsync(claim, token, Member, Amount, (await keys.AuthoriseAsync(keys.Next, payout)).ToParam(), default);
        Assert.Equal("UnknownKey", old.Error);
        Assert.True(current.Succeeded, current.ToString());
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public async Task A_threshold_signed_checkpoint_is_anchored_once(string scheme)
    {
        var (client, _) = await DeployAsync(keys.Key(scheme));
        var payload = LedgerCheckpoint.Payload("pool-x", 42, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), LedgerEntry.FormatTime(DateTimeOffset.UtcNow));
        var auth = (await keys.AuthoriseAsync(keys.Key(scheme), payload)).ToParam();

        var anchored = await client.AnchorAsync(payload, auth, default);
        var again = await client.AnchorAsync(payload, auth, default);

        Assert.True(anchored.Succeeded, anchored.ToString());
        Assert.Equal("AlreadyAnchored", again.Error);
        Assert.Equal(anchored.Block, await client.AnchoredAtAsync(SHA256.HashData(payload), default));
        var anchor = Assert.Single(await client.AnchorsAsync(default));
        Assert.Equal(payload, anchor.Payload);
        output.WriteLine($"{scheme} anchor on {anvil.Hardfork ?? "default"} schedule: {anchored.GasUsed} gas");

        // The same key's signature over a payload that is not a checkpoint anchors nothing.
        var other = "{\"amount\":1}"u8.ToArray();
        Assert.Equal("NotACheckpoint", (await client.AnchorAsync(other, (await keys.AuthoriseAsync(keys.Key(scheme), other)).ToParam(), default)).Error);
    }

    [Fact]
    public async Task Checkpoints_of_every_length_modulo_the_encoders_24_byte_groups_are_anchored()
    {
        // The contract base64url-encodes the signed payload 24 bytes at a time and masks what
        // lies past its end: 24 consecutive payload lengths take every path (RFC 4648 §5 tails of
        // one and two bytes, a last group of 1..24 bytes), and each anchors only if the
        // contract's encoding is the signer's.
        var (client, _) = await DeployAsync(keys.Shoup);
        var hash = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var time = LedgerEntry.FormatTime(DateTimeOffset.UtcNow);
        var lengths = new HashSet<int>();
        for (var pool = 1; pool <= 24; pool++)
        {
            var payload = LedgerCheckpoint.Payload(new string('p', pool), 7, hash, time);
            lengths.Add(payload.Length % 24);

            var anchored = await client.AnchorAsync(payload, (await keys.AuthoriseAsync(keys.Shoup, payload)).ToParam(), default);

            Assert.True(anchored.Succeeded, $"{payload.Length}-byte checkpoint: {anchored}");
        }

        Assert.Equal(24, lengths.Count);
        Assert.Equal(24, (await client.AnchorsAsync(default)).Count);
    }

    [Fact]
    public async Task The_contract_builds_the_same_messages_and_key_hashes_as_the_service()
    {
        var (client, token) = await DeployAsync(keys.Product);
        var claim = TreasuryMessages.ClaimHash("claim-1");
        Assert.Equal(TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, Member, Amount), await client.PayoutMessageAsync(claim, token, Member, Amount, default));
        foreach (var key in ChainPoolKey.FromRecord(keys.Product).Concat(ChainPoolKey.FromRecord(keys.Shoup)))
        {
            Assert.Equal(key.Hash, await client.KeyHashAsync(key, default));
        }
    }

    private async Task<(TreasuryClient Client, string Token)> DeployAsync(KeyRecord key)
    {
        var client = new TreasuryClient(anvil.RpcUrl, AnvilProcess.DevAccountKey, AnvilProcess.DevChainId, "");
        var token = await client.DeployStablecoinAsync(default);
        var deployed = await client.DeployAsync(Cap, ChainPoolKey.FromRecord(key), default);
        Assert.True(deployed.Succeeded, deployed.ToString());
        Assert.True((await client.MintAsync(token, client.Address, 10 * Cap, default)).Succeeded);
        // The member already holds some tokens (the usual case; a first balance costs 17,100 gas more, EIP-2200).
        Assert.True((await client.MintAsync(token, Member, 1, default)).Succeeded);
        return (client, token);
    }
}

[Collection(ChainKeysGroup.Name)]
public sealed class TreasuryOnDefaultScheduleTests(ChainKeysFixture keys, AnvilDefault anvil, ITestOutputHelper output)
    : TreasuryContractTests(keys, anvil.Anvil, output), IClassFixture<AnvilDefault>;

[Collection(ChainKeysGroup.Name)]
public sealed class TreasuryOnPragueScheduleTests(ChainKeysFixture keys, AnvilPrague anvil, ITestOutputHelper output)
    : TreasuryContractTests(keys, anvil.Anvil, output), IClassFixture<AnvilPrague>;

/// <summary>Addresses of anvil's dev accounts.</summary>
internal static class Accounts
{
    public static string Address(string privateKey) => new Nethereum.Web3.Accounts.Account(privateKey).Address;
}
