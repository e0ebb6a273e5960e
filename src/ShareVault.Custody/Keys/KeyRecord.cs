using System.Text.Json.Serialization;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Keys;

/// <summary>
/// What the data folder keeps about a threshold key: public parts and where each custodian's
/// share lives. Never any private part.
/// </summary>
public sealed class KeyRecord
{
    public required string Name { get; init; }

    public required KeyScheme Scheme { get; init; }

    public required int Threshold { get; init; }

    public required int Bits { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required IReadOnlyList<CustodianRecord> Custodians { get; init; }

    /// <summary>Product RSA: one composite key per quorum, in the order quorums are tried.</summary>
    public IReadOnlyList<QuorumRecord> Quorums { get; init; } = [];

    /// <summary>Shoup RSA: the one public key and its verification values.</summary>
    public ShoupPublicRecord? Shoup { get; init; }

    public CustodianRecord Custodian(string name) =>
        Custodians.FirstOrDefault(c => c.Name == name)
        ?? throw new KeyCatalogException($"Key '{Name}' has no custodian '{name}'");
}

/// <summary>One custodian of a key: its name, URI (no secret in it), object label and public key.</summary>
public sealed class CustodianRecord
{
    public required string Name { get; init; }

    public required string Uri { get; init; }

    public required string ObjectLabel { get; init; }

    public required ShareVault.Hardware.Custodians.CustodianKind Kind { get; init; }

    /// <summary>Product RSA: the custodian's own RSA public key (base64url n and e).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Modulus { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Exponent { get; init; }

    /// <summary>Shoup RSA: the custodian's share index (1-based).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? ShareIndex { get; init; }

    /// <summary>Shoup RSA: verification value vᵢ = v^sᵢ mod N (base64url), public.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? VerificationValue { get; init; }
}

/// <summary>A product-RSA quorum: its <c>kid</c> and members, in creation order.</summary>
public sealed class QuorumRecord
{
    public required string Kid { get; init; }

    public required IReadOnlyList<string> Members { get; init; }
}

/// <summary>Shoup RSA public material (all public): N, e, n (players), Δ's n and the verification base.</summary>
public sealed class ShoupPublicRecord
{
    public required string Modulus { get; init; }

    public required string Exponent { get; init; }

    public required int Players { get; init; }

    public required string VerificationBase { get; init; }
}
