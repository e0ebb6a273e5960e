namespace ShareVault.Evidence;

/// <summary>Why a verifier refused a record. Stable names: the claims service counts and reports them.</summary>
public enum EvidenceRejection
{
    /// <summary>Not rejected.</summary>
    None = 0,

    /// <summary>Larger than <see cref="EvidenceLimits.MaxRecordBytes"/>; nothing was decoded.</summary>
    TooLarge,

    /// <summary>Not a COSE_Sign1 structure (RFC 9052 §4.2), or its headers are malformed, or the payload is detached.</summary>
    MalformedCose,

    /// <summary>The protected header does not say ES256 (alg -7), or the alg sits only in the unprotected header.</summary>
    WrongAlgorithm,

    /// <summary>No protected <c>kid</c>, or it is not a valid device id.</summary>
    MissingKeyId,

    /// <summary>No enrolled key for the device named by <c>kid</c>.</summary>
    UnknownKey,

    /// <summary>The ES256 signature does not verify under the device's key.</summary>
    BadSignature,

    /// <summary>The signed payload is not the CBOR this format defines (RFC 8949 deterministic encoding, known keys, right types).</summary>
    MalformedCbor,

    /// <summary>The payload version is not <see cref="EvidenceFormat.Version"/>.</summary>
    WrongVersion,

    /// <summary>The payload's device id differs from the <c>kid</c> it was verified under.</summary>
    DeviceMismatch,

    /// <summary>Too many readings or faults, or a string too long (<see cref="EvidenceLimits"/>).</summary>
    LimitExceeded,

    /// <summary>
    /// A reading's time lies outside its record's window (<see cref="EvidenceLimits.MaxReadingAge"/> before,
    /// <see cref="EvidenceLimits.MaxReadingLead"/> after the record's time).
    /// </summary>
    ReadingOutsideRecordTime,
}
