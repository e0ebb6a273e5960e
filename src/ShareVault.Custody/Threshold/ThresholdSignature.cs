namespace ShareVault.Custody.Threshold;

/// <summary>Why a custodian contributed nothing usable to a signature.</summary>
public enum CustodianFailureReason
{
    Unreachable,
    TimedOut,
    KeyMissing,
    WrongPartial,
    Refused,
}

/// <summary>
/// A custodian that failed during signing, by name, with the reason (never a secret); a custody
/// node's refusal carries the node's own code (e.g. <c>BadEvidence</c>) in <see cref="Code"/>.
/// </summary>
public sealed record CustodianFailure(string Custodian, CustodianFailureReason Reason, string Detail, string? Code = null)
{
    public override string ToString() => Code is null ? $"{Custodian}: {Reason} ({Detail})" : $"{Custodian}: {Reason} {Code} ({Detail})";
}

/// <summary>A finished threshold signature: an ordinary RSASSA-PKCS1-v1_5 signature and who made it.</summary>
public sealed record ThresholdSignature(string Kid, byte[] Signature, IReadOnlyList<string> Signers, IReadOnlyList<CustodianFailure> Failures);

/// <summary>Signing could not finish: not enough custodians gave good partials.</summary>
public sealed class ThresholdSigningException(string message, IReadOnlyList<CustodianFailure> failures)
    : Exception(message + (failures.Count == 0 ? string.Empty : ": " + string.Join("; ", failures)))
{
    public IReadOnlyList<CustodianFailure> Failures { get; } = failures;
}
