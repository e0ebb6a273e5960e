using System.Numerics;
using System.Security.Cryptography;
using ShareVault.Hardware;
using ShareVault.Keys;

namespace ShareVault.Threshold.ProductRsa;

/// <summary>
/// The product-RSA coordinator: encodes EMSA-PKCS1-v1_5 at the quorum's composite length, asks
/// every member for sᵢ = EM^dᵢ mod nᵢ in parallel, checks each partial (sᵢ^e ≡ EM mod nᵢ),
/// combines by CRT and verifies the result under N_Q. A failing custodian is named and, unless a
/// quorum was requested, another quorum without it is tried.
/// </summary>
internal sealed class ProductRsaSigner(ShareStoreRegistry stores, TimeSpan partialTimeout)
{
    /// <summary>
    /// Signs the message that <paramref name="messageForKid"/> builds for a quorum's kid (a JWS
    /// header names the kid, so the signed bytes depend on which quorum ends up signing).
    /// </summary>
    public async Task<ThresholdSignature> SignAsync(KeyRecord key, Func<string, byte[]> messageForKid, string? quorumKid, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageForKid);
        ArgumentNullException.ThrowIfNull(key);
        if (key.Scheme != KeyRecord.ProductRsa)
        {
            throw new ArgumentException($"Key '{key.Name}' is a {key.Scheme} key, not {KeyRecord.ProductRsa}", nameof(key));
        }

        IReadOnlyList<QuorumRecord> candidates = quorumKid is null
            ? key.Quorums
            : [key.Quorums.FirstOrDefault(q => q.Kid == quorumKid) ?? throw new KeyCatalogException($"Key '{key.Name}' has no quorum '{quorumKid}'")];

        var failures = new List<CustodianFailure>();
        var failed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var quorum in candidates)
        {
            if (quorum.Members.Any(failed.Contains))
            {
                continue;
            }

            var composite = ProductRsaKey.CompositeKey(key, quorum);
            var em = Pkcs1Encoding.EncodeSha256(messageForKid(quorum.Kid), composite.ByteLength);
            var emValue = BigEndian.ToInteger(em);
            var members = quorum.Members.Select(key.Custodian).ToList();
            var partials = await Task.WhenAll(members.Select(m => PartialAsync(m, emValue, cancellationToken))).ConfigureAwait(false);

            var bad = partials.Where(p => p.Failure is not null).Select(p => p.Failure!).ToList();
            if (bad.Count > 0)
            {
                failures.AddRange(bad);
                failed.UnionWith(bad.Select(b => b.Custodian));
                continue;
            }

            var signature = IntegerMath.Crt([.. partials.Select(p => p.Value)], [.. members.Select(m => ProductRsaKey.MemberKey(m).Modulus)]);
            if (composite.Apply(signature) != emValue)
            {
                // Every partial checked out, so this cannot happen unless the catalog is inconsistent.
                throw new CryptographicException($"Combined signature for {quorum.Kid} does not verify; the key record may be damaged");
            }

            return new ThresholdSignature(quorum.Kid, BigEndian.ToBytes(signature, composite.ByteLength), quorum.Members, failures);
        }

        throw new ThresholdSigningException(
            $"No quorum of key '{key.Name}' could sign ({key.Threshold} of {key.Custodians.Count} custodians needed)", failures);
    }

    private async Task<(BigInteger Value, CustodianFailure? Failure)> PartialAsync(CustodianRecord member, BigInteger em, CancellationToken cancellationToken)
    {
        var memberKey = ProductRsaKey.MemberKey(member);
        var address = new CustodianAddress(member.Name, member.Uri, member.ObjectLabel, member.Kind);
        var input = BigEndian.ToBytes(em % memberKey.Modulus, memberKey.ByteLength);
        byte[] output;
        try
        {
            output = await Task.Run(() => stores.Get(address).RsaRawPrivate(address.ObjectLabel, input), cancellationToken)
                .WaitAsync(partialTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            stores.Forget(address);
            return (default, new CustodianFailure(member.Name, CustodianFailureReason.TimedOut, $"no partial within {partialTimeout.TotalSeconds:0.#} s"));
        }
        catch (ShareStoreException e)
        {
            if (e.IsTransient)
            {
                stores.Forget(address);
            }

            var reason = e.Error switch
            {
                ShareStoreError.KeyNotFound => CustodianFailureReason.KeyMissing,
                ShareStoreError.DeviceUnreachable or ShareStoreError.TokenNotFound or ShareStoreError.ModuleNotFound => CustodianFailureReason.Unreachable,
                _ => CustodianFailureReason.Refused,
            };
            return (default, new CustodianFailure(member.Name, reason, e.Message));
        }

        var value = BigEndian.ToInteger(output);
        if (value >= memberKey.Modulus || memberKey.Apply(value) != em % memberKey.Modulus)
        {
            return (default, new CustodianFailure(member.Name, CustodianFailureReason.WrongPartial, "partial does not satisfy s^e ≡ EM (mod n)"));
        }

        return (value, null);
    }
}
