using System.Text;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Signing;

/// <summary>Signs with a threshold key of any scheme, as a raw PKCS#1 v1.5 signature or a JWS.</summary>
public sealed class ThresholdSigner(ShareStoreRegistry stores, TimeSpan partialTimeout)
{
    public static readonly TimeSpan DefaultPartialTimeout = TimeSpan.FromSeconds(20);

    private readonly ProductRsaSigner _productRsa = new(stores, partialTimeout);
    private readonly ShoupSigner _shoup = new(stores, partialTimeout);

    public ThresholdSigner(ShareStoreRegistry stores)
        : this(stores, DefaultPartialTimeout)
    {
    }

    /// <summary>
    /// Only these custodians sign (<c>--signers a,b</c>), for both schemes: product RSA tries only
    /// quorums among them, Shoup asks only them. Null: any custodian.
    /// </summary>
    public IReadOnlySet<string>? Signers { get; init; }

    /// <summary>RSASSA-PKCS1-v1_5 with SHA-256 over <paramref name="message"/> (a custody node signs it only with --allow-raw-signing).</summary>
    public Task<ThresholdSignature> SignRawAsync(KeyRecord key, byte[] message, string? kid, CancellationToken cancellationToken) =>
        SignAsync(key, _ => message, kid, null, cancellationToken);

    /// <summary>A JWS compact serialization (RS256) of <paramref name="payload"/>, its kid naming the signing key.</summary>
    public Task<(string Jws, ThresholdSignature Signature)> SignJwsAsync(KeyRecord key, byte[] payload, string? kid, CancellationToken cancellationToken) =>
        SignJwsAsync(key, payload, kid, null, cancellationToken);

    /// <summary>
    /// A JWS (RS256) of <paramref name="payload"/>; custody nodes among the custodians receive
    /// <paramref name="context"/> (justification and ledger segment) and judge it before signing.
    /// </summary>
    public async Task<(string Jws, ThresholdSignature Signature)> SignJwsAsync(KeyRecord key, byte[] payload, string? kid, SigningContext? context, CancellationToken cancellationToken)
    {
        var signature = await SignAsync(key, k => Encoding.ASCII.GetBytes(Jws.SigningInput(k, payload)), kid, context, cancellationToken).ConfigureAwait(false);
        return (Jws.Compact(Jws.SigningInput(signature.Kid, payload), signature.Signature), signature);
    }

    private Task<ThresholdSignature> SignAsync(KeyRecord key, Func<string, byte[]> messageForKid, string? kid, SigningContext? context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (Signers is { } chosen)
        {
            var unknown = chosen.Where(n => key.Custodians.All(c => c.Name != n)).ToList();
            if (unknown.Count > 0 || chosen.Count < key.Threshold)
            {
                throw new KeyCatalogException(unknown.Count > 0
                    ? $"Key '{key.Name}' has no custodian '{unknown[0]}'"
                    : $"Key '{key.Name}' needs {key.Threshold} signers, and only {chosen.Count} were chosen");
            }

            key = Restricted(key, chosen);
        }

        var justification = context is null ? null : new PartialJustification(context.Justification, context.LedgerAfter);
        return key.Scheme switch
        {
            KeyScheme.ProductRsa => _productRsa.SignAsync(key, messageForKid, kid, justification, cancellationToken),
            KeyScheme.ShoupRsa => _shoup.SignAsync(key, messageForKid, kid, justification, cancellationToken),
            _ => throw new KeyCatalogException($"Key '{key.Name}' uses scheme '{key.Scheme}', which this build cannot sign with"),
        };
    }

    // The record as the signers see it: quorums among the chosen (product RSA), only the chosen asked (Shoup;
    // share indices and Δ are unchanged because the custodians keep their records).
    private static KeyRecord Restricted(KeyRecord key, IReadOnlySet<string> chosen) => new()
    {
        Name = key.Name,
        Scheme = key.Scheme,
        Threshold = key.Threshold,
        Bits = key.Bits,
        CreatedAt = key.CreatedAt,
        Custodians = key.Scheme == KeyScheme.ShoupRsa ? [.. key.Custodians.Where(c => chosen.Contains(c.Name))] : key.Custodians,
        Quorums = [.. key.Quorums.Where(q => q.Members.All(chosen.Contains))],
        Shoup = key.Shoup,
    };
}
