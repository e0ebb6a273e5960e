using System.Text.Json.Serialization;

namespace ShareVault.Hardware.Custodians;

/// <summary>Which hardware holds a custodian's key; stored in key records as <c>"pkcs11"</c> or <c>"tpm"</c>.</summary>
[JsonConverter(typeof(CustodianKindJsonConverter))]
public enum CustodianKind
{
    /// <summary>A PKCS#11 token (RFC 7512 URI <c>pkcs11:</c>).</summary>
    [JsonStringEnumMemberName("pkcs11")]
    Pkcs11,

    /// <summary>A TPM 2.0 (<c>tpm:</c> URI).</summary>
    [JsonStringEnumMemberName("tpm")]
    Tpm,

    /// <summary>A custody node (<c>https://HOST:PORT</c>): the hardware and its PIN live in another process, reached over mutual TLS.</summary>
    [JsonStringEnumMemberName("node")]
    Node,
}

/// <summary>The stored text of a <see cref="CustodianKind"/>.</summary>
public static class CustodianKindText
{
    public static string ToText(this CustodianKind kind) => kind switch
    {
        CustodianKind.Pkcs11 => "pkcs11",
        CustodianKind.Tpm => "tpm",
        CustodianKind.Node => "node",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown custodian kind"),
    };
}

/// <summary>Reads and writes only the stored names; a number or an unknown name is a damaged record.</summary>
internal sealed class CustodianKindJsonConverter() : JsonStringEnumConverter<CustodianKind>(namingPolicy: null, allowIntegerValues: false);
