using System.Numerics;
using Nethereum.ABI.FunctionEncoding.Attributes;
using Nethereum.Contracts;

namespace ShareVault.Service.Chain;

// Nethereum typed messages for contracts/PoolTreasury.sol and contracts/TestStablecoin.sol. Names
// and types follow the Solidity source; TreasuryArtefactTests checks them against the compiled ABI.

/// <summary>PoolTreasury.PoolKey: the message-encoding length and the moduli (one, or a quorum's members).</summary>
public sealed class PoolKeyParam
{
    [Parameter("uint256", "emLength", 1)]
    public BigInteger EmLength { get; set; }

    [Parameter("bytes[]", "moduli", 2)]
    public List<byte[]> Moduli { get; set; } = [];
}

/// <summary>PoolTreasury.Signature: the JWS header (base64url), the key and one part per modulus.</summary>
public sealed class SignatureParam
{
    [Parameter("bytes", "header", 1)]
    public byte[] Header { get; set; } = [];

    [Parameter("tuple", "key", 2)]
    public PoolKeyParam Key { get; set; } = new();

    [Parameter("bytes[]", "parts", 3)]
    public List<byte[]> Parts { get; set; } = [];
}

internal sealed class TreasuryDeployment : ContractDeploymentMessage
{
    public TreasuryDeployment()
        : base(TreasuryArtefact.TreasuryBytecode)
    {
    }

    [Parameter("uint128", "cap", 1)]
    public BigInteger Cap { get; set; }

    [Parameter("tuple[]", "keys", 2)]
    public List<PoolKeyParam> Keys { get; set; } = [];
}

internal sealed class StablecoinDeployment : ContractDeploymentMessage
{
    public StablecoinDeployment()
        : base(TreasuryArtefact.StablecoinBytecode)
    {
    }
}

[Function("payout")]
internal sealed class PayoutFunction : FunctionMessage
{
    [Parameter("bytes32", "claim", 1)]
    public byte[] Claim { get; set; } = [];

    [Parameter("address", "token", 2)]
    public string Token { get; set; } = "";

    [Parameter("address", "to", 3)]
    public string To { get; set; } = "";

    [Parameter("uint256", "amount", 4)]
    public BigInteger Amount { get; set; }

    [Parameter("tuple", "sig", 5)]
    public SignatureParam Sig { get; set; } = new();
}

[Function("payoutMessage", "bytes")]
internal sealed class PayoutMessageFunction : FunctionMessage
{
    [Parameter("bytes32", "claim", 1)]
    public byte[] Claim { get; set; } = [];

    [Parameter("address", "token", 2)]
    public string Token { get; set; } = "";

    [Parameter("address", "to", 3)]
    public string To { get; set; } = "";

    [Parameter("uint256", "amount", 4)]
    public BigInteger Amount { get; set; }
}

[Function("anchor")]
internal sealed class AnchorFunction : FunctionMessage
{
    [Parameter("bytes", "payload", 1)]
    public byte[] Payload { get; set; } = [];

    [Parameter("tuple", "sig", 2)]
    public SignatureParam Sig { get; set; } = new();
}

[Function("rotate")]
internal sealed class RotateFunction : FunctionMessage
{
    [Parameter("uint128", "newCap", 1)]
    public BigInteger NewCap { get; set; }

    [Parameter("tuple[]", "keys", 2)]
    public List<PoolKeyParam> Keys { get; set; } = [];

    [Parameter("tuple", "sig", 3)]
    public SignatureParam Sig { get; set; } = new();
}

[Function("rotationMessage", "bytes")]
internal sealed class RotationMessageFunction : FunctionMessage
{
    [Parameter("uint128", "newCap", 1)]
    public BigInteger NewCap { get; set; }

    [Parameter("tuple[]", "keys", 2)]
    public List<PoolKeyParam> Keys { get; set; } = [];
}

[Function("keyHash", "bytes32")]
internal sealed class KeyHashFunction : FunctionMessage
{
    [Parameter("tuple", "key", 1)]
    public PoolKeyParam Key { get; set; } = new();
}

[Function("deposit")]
internal sealed class DepositFunction : FunctionMessage
{
    [Parameter("address", "token", 1)]
    public string Token { get; set; } = "";

    [Parameter("uint256", "amount", 2)]
    public BigInteger Amount { get; set; }

    [Parameter("bytes32", "member", 3)]
    public byte[] Member { get; set; } = [];
}

[Function("paid", "bool")]
internal sealed class PaidFunction : FunctionMessage
{
    [Parameter("bytes32", "", 1)]
    public byte[] Claim { get; set; } = [];
}

[Function("anchoredAt", "uint256")]
internal sealed class AnchoredAtFunction : FunctionMessage
{
    [Parameter("bytes32", "", 1)]
    public byte[] PayloadHash { get; set; } = [];
}

[Function("epoch", "uint64")]
internal sealed class EpochFunction : FunctionMessage;

[Function("payoutCap", "uint128")]
internal sealed class PayoutCapFunction : FunctionMessage;

[Function("anchorCount", "uint256")]
internal sealed class AnchorCountFunction : FunctionMessage;

[Function("mint")]
internal sealed class MintFunction : FunctionMessage
{
    [Parameter("address", "to", 1)]
    public string To { get; set; } = "";

    [Parameter("uint256", "amount", 2)]
    public BigInteger Amount { get; set; }
}

[Function("approve", "bool")]
internal sealed class ApproveFunction : FunctionMessage
{
    [Parameter("address", "spender", 1)]
    public string Spender { get; set; } = "";

    [Parameter("uint256", "amount", 2)]
    public BigInteger Amount { get; set; }
}

[Function("balanceOf", "uint256")]
internal sealed class BalanceOfFunction : FunctionMessage
{
    [Parameter("address", "", 1)]
    public string Owner { get; set; } = "";
}

[Function("decimals", "uint8")]
internal sealed class DecimalsFunction : FunctionMessage;

[Event("PaidOut")]
public sealed class PaidOutEvent : IEventDTO
{
    [Parameter("bytes32", "claim", 1, true)]
    public byte[] Claim { get; set; } = [];

    [Parameter("address", "token", 2, true)]
    public string Token { get; set; } = "";

    [Parameter("address", "to", 3, true)]
    public string To { get; set; } = "";

    [Parameter("uint256", "amount", 4, false)]
    public BigInteger Amount { get; set; }

    [Parameter("bytes32", "keyHash", 5, false)]
    public byte[] KeyHash { get; set; } = [];
}

[Event("Deposited")]
public sealed class DepositedEvent : IEventDTO
{
    [Parameter("address", "token", 1, true)]
    public string Token { get; set; } = "";

    [Parameter("address", "from", 2, true)]
    public string From { get; set; } = "";

    [Parameter("bytes32", "member", 3, true)]
    public byte[] Member { get; set; } = [];

    [Parameter("uint256", "amount", 4, false)]
    public BigInteger Amount { get; set; }
}

[Event("CheckpointAnchored")]
public sealed class CheckpointAnchoredEvent : IEventDTO
{
    [Parameter("uint256", "index", 1, true)]
    public BigInteger Index { get; set; }

    [Parameter("bytes32", "payloadHash", 2, true)]
    public byte[] PayloadHash { get; set; } = [];

    [Parameter("bytes", "payload", 3, false)]
    public byte[] Payload { get; set; } = [];
}
