using System.Text.Json.Nodes;
using ShareVault.Claims.Rules;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// A <c>claim_opened</c> entry's <c>preceded_by</c>: the record before the claim's first one (its
/// sequence number and the SHA-256 of its COSE bytes) when the service had it, or null when it had
/// none (the chain's first record, or a gap evaluation moved past). Being in the hash chain, it lets
/// <c>ledger verify</c> and a custody node demand that record: an export or justification without it
/// cannot pass for one from a gap. Entries written before the field existed omit it; they are read
/// as before (the predecessor is used when given, not demanded).
/// </summary>
public static class ClaimPredecessor
{
    public const string Field = "preceded_by";

    /// <summary>What a claim body says of its first record's predecessor.</summary>
    /// <param name="body">The claim_opened body.</param>
    /// <param name="path">Its JSON path, for a problem's message.</param>
    /// <param name="firstSeq">The claim's first record: the predecessor must be the one just before it.</param>
    /// <exception cref="FormatException">The field is present but neither null nor {seq, sha256} of record <paramref name="firstSeq"/> − 1.</exception>
    public static (long Seq, string Sha256)? Read(JsonObject body, string path, long firstSeq)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (!body.TryGetPropertyValue(Field, out var node) || node is null)
        {
            return null;
        }

        var fieldPath = $"{path}.{Field}";
        var item = JsonFields.Object(node, fieldPath);
        var seq = JsonFields.Int64(item["seq"], fieldPath + ".seq");
        var sha256 = JsonFields.String(item["sha256"], fieldPath + ".sha256");
        if (seq != firstSeq - 1 || sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigitLower))
        {
            throw new FormatException($"{fieldPath} is not the record before the claim's first (#{firstSeq - 1}) with a lower-case SHA-256 hex");
        }

        return (seq, sha256);
    }
}
