using System.Numerics;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold;

/// <summary>
/// Why the coordinator asks for a signature, for custodians that judge it themselves: the
/// justification (evidence, device keys; built by ShareVault.Claims) and the ledger entries after a
/// given sequence number (the node asks from its own head).
/// </summary>
internal sealed record PartialJustification(JsonObject Justification, Func<long, JsonArray> LedgerAfter);

/// <summary>
/// What a custodian that raises only messages it verified itself is sent: the key, the exact bytes
/// the threshold key signs (a JWS signing input, or the raw message), and for product RSA the
/// quorum's member keys (the node computes EMSA-PKCS1-v1_5 at |N_Q| itself).
/// </summary>
internal sealed record JustifiedPartialRequest(
    string KeyName,
    string ObjectLabel,
    KeyScheme Scheme,
    string Kid,
    byte[] SigningInput,
    IReadOnlyList<RsaPublicKey> QuorumKeys,
    PartialJustification? Justification);

/// <summary>
/// A custodian in another process (a custody node) that computes its partial from the signing
/// input after its own checks, instead of raising a value the coordinator chose.
/// </summary>
internal interface IJustifyingCustodian
{
    /// <summary>The partial (big-endian); throws <see cref="CustodianRefusedException"/> when the node refused, <see cref="ShareStoreException"/> when unreachable.</summary>
    Task<BigInteger> PartialAsync(JustifiedPartialRequest request, CancellationToken cancellationToken);

    /// <summary>Whether the custodian answers within <paramref name="deadline"/> (used to pick a quorum of nodes that answer).</summary>
    Task<bool> AnswersAsync(TimeSpan deadline, CancellationToken cancellationToken);
}

/// <summary>A custody node looked at the request and refused it, with its own code (never a secret).</summary>
internal sealed class CustodianRefusedException(string code, string detail)
    : Exception($"refused {code}: {detail}")
{
    public string Code { get; } = code;

    public string Detail { get; } = detail;
}
