namespace ShareVault.Evidence;

/// <summary>
/// Constants of the evidence format (docs/evidence-format.md is the normative description).
/// </summary>
public static class EvidenceFormat
{
    /// <summary>Version of the evidence payload format this library writes and accepts.</summary>
    public const int Version = 1;

    /// <summary>COSE algorithm identifier for ES256, ECDSA P-256 with SHA-256 (RFC 9053 §2.1).</summary>
    public const int AlgorithmEs256 = -7;

    /// <summary>The COSE <c>content type</c> header (label 3, RFC 9052 §3.1) of every evidence record.</summary>
    public const string PayloadContentType = "application/vnd.sharevault.evidence+cbor";

    /// <summary>Media type of a whole record on the wire (RFC 9052 §2, IANA "application/cose").</summary>
    public const string CoseMediaType = "application/cose; cose-type=\"cose-sign1\"";

    /// <summary>Length of a SHA-256 record hash.</summary>
    public const int HashLength = 32;

    /// <summary>Longest device id accepted (it is also an MQTT topic level): <see cref="Identifier.MaxLength"/>.</summary>
    public const int MaxDeviceIdLength = Identifier.MaxLength;
}
