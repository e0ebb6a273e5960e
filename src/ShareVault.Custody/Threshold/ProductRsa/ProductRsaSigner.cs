using System.Collections.Concurrent;
using System.Numerics;
using System.Runtime.CompilerServices;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Threshold.ProductRsa;

/// <summary>
/// The product-RSA coordinator: encodes EMSA-PKCS1-v1_5 at the quorum's composite length, asks
/// every member for sᵢ = EM^dᵢ mod nᵢ in parallel, checks each partial (sᵢ^e ≡ EM mod nᵢ),
/// combines by CRT and verifies the result under N_Q. A failing custodian is named and, unless a
/// quorum was requested, another quorum without it is tried. A custody node (an
/// <see cref="IJustifyingCustodian"/>) gets the signing input and the quorum's keys instead of EM
/// and computes EM itself; nodes that do not answer a health check are left out of the quorums
/// tried, so a quorum is chosen from the nodes that answer.
/// </summary>
internal sealed class ProductRsaSigner(ShareStoreRegistry stores, TimeSpan partialTimeout)
{
    // Per key record: CRT coefficients and parsed member keys of each quorum, computed once.
    private readonly ConditionalWeakTable<KeyRecord, ConcurrentDictionary<string, QuorumMath>> _quorumMath = new();

    /// <summary>
    /// Signs the message that <paramref name="messageForKid"/> builds for a quorum's kid (a JWS
    /// header names the kid, so the signed bytes depend on which quorum ends up signing).
    /// </summary>
    public async Task<ThresholdSignature> SignAsync(KeyRecord key, Func<string, byte[]> messageForKid, string? quorumKid, PartialJustification? justification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageForKid);
        ArgumentNullException.ThrowIfNull(key);
        if (key.Scheme != KeyScheme.ProductRsa)
        {
            throw new ArgumentException($"Key '{key.Name}' is a {key.Scheme.ToText()} key, not {KeySchemeText.ProductRsa}", nameof(key));
        }

        IReadOnlyList<QuorumRecord> candidates = quorumKid is null
            ? key.Quorums
            : [key.Quorums.FirstOrDefault(q => q.Kid == quorumKid) ?? throw new KeyCatalogException($"Key '{key.Name}' has no quorum '{quorumKid}'")];

        var failures = new List<CustodianFailure>();
        var failed = new HashSet<string>(StringComparer.Ordinal);
        if (candidates.Count > 1)
        {
            foreach (var silent in await SilentNodesAsync(key, cancellationToken).ConfigureAwait(false))
            {
                failures.Add(silent);
                failed.Add(silent.Custodian);
            }
        }

        foreach (var quorum in candidates)
        {
            if (quorum.Members.Any(failed.Contains))
            {
                continue;
            }

            var math = QuorumMath(key, quorum);
            var message = messageForKid(quorum.Kid);
            var em = Pkcs1Encoding.EncodeSha256(message, math.Composite.ByteLength);
            var emValue = BigEndian.ToInteger(em);
            var members = quorum.Members.Select(key.Custodian).ToList();
            var request = new JustifiedPartialRequest(key.Name, string.Empty, KeyScheme.ProductRsa, quorum.Kid, message, math.MemberKeys, justification);
            // Each partial starts its hardware call (or its request) before the first await, so all members work in parallel.
            var partials = await Task.WhenAll(members.Select((m, i) => PartialAsync(m, math.MemberKeys[i], emValue, request, cancellationToken))).ConfigureAwait(false);

            var bad = partials.Where(p => p.Failure is not null).Select(p => p.Failure!).ToList();
            if (bad.Count > 0)
            {
                failures.AddRange(bad);
                failed.UnionWith(bad.Select(b => b.Custodian));
                continue;
            }

            var signature = math.Combine([.. partials.Select(p => p.Value)]);
            return new ThresholdSignature(quorum.Kid, BigEndian.ToBytes(signature, math.Composite.ByteLength), quorum.Members, failures);
        }

        throw new ThresholdSigningException(
            $"No quorum of key '{key.Name}' could sign ({key.Threshold} of {key.Custodians.Count} custodians needed)", failures);
    }

    private QuorumMath QuorumMath(KeyRecord key, QuorumRecord quorum)
    {
        var cache = _quorumMath.GetValue(key, _ => new ConcurrentDictionary<string, ProductRsa.QuorumMath>(StringComparer.Ordinal));
        return cache.GetOrAdd(quorum.Kid, _ => ProductRsa.QuorumMath.For(key, quorum));
    }

    /// <summary>Node custodians of the key that do not answer a health check within the deadline (all asked at once).</summary>
    private async Task<List<CustodianFailure>> SilentNodesAsync(KeyRecord key, CancellationToken cancellationToken)
    {
        var nodes = key.Custodians.Where(c => c.Kind == CustodianKind.Node).ToList();
        if (nodes.Count == 0)
        {
            return [];
        }

        var deadline = partialTimeout < HealthDeadline ? partialTimeout : HealthDeadline;
        var answers = await Task.WhenAll(nodes.Select(async c =>
        {
            try
            {
                return stores.Get(new CustodianAddress(c.Name, c.Uri, c.ObjectLabel, c.Kind)) is IJustifyingCustodian node
                    && await node.AnswersAsync(deadline, cancellationToken).ConfigureAwait(false);
            }
            catch (ShareStoreException)
            {
                return false;
            }
        })).ConfigureAwait(false);
        return [.. nodes.Where((_, i) => !answers[i]).Select(c => new CustodianFailure(c.Name, CustodianFailureReason.Unreachable, $"no answer to a health check within {deadline.TotalSeconds:0.#} s"))];
    }

    private static readonly TimeSpan HealthDeadline = TimeSpan.FromSeconds(2);

    private async Task<(BigInteger Value, CustodianFailure? Failure)> PartialAsync(CustodianRecord member, RsaPublicKey memberKey, BigInteger em, JustifiedPartialRequest request, CancellationToken cancellationToken)
    {
        var address = new CustodianAddress(member.Name, member.Uri, member.ObjectLabel, member.Kind);
        var input = BigEndian.ToBytes(em % memberKey.Modulus, memberKey.ByteLength);
        byte[] output;
        try
        {
            var store = stores.Get(address);
            if (store is IJustifyingCustodian node)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(partialTimeout);
                try
                {
                    var partial = await node.PartialAsync(request with { ObjectLabel = address.ObjectLabel }, deadline.Token).ConfigureAwait(false);
                    output = BigEndian.ToBytes(partial);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException();
                }
                catch (CustodianRefusedException e)
                {
                    return (default, new CustodianFailure(member.Name, CustodianFailureReason.Refused, e.Detail, e.Code));
                }
            }
            else
            {
                var work = Task.Run(() => store.RsaRawPrivate(address.ObjectLabel, input), cancellationToken);
                output = await work.WaitAsync(partialTimeout, cancellationToken).ConfigureAwait(false);
            }
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
            if (reason == CustodianFailureReason.Refused && HoldsOtherKey(address, memberKey))
            {
                // A key replaced under the same label: the input (reduced mod the recorded modulus) may
                // exceed the new modulus, which the hardware refuses instead of answering wrongly.
                return (default, new CustodianFailure(member.Name, CustodianFailureReason.WrongPartial,
                    "the hardware holds another key under the recorded label (" + e.Message + ")"));
            }

            return (default, new CustodianFailure(member.Name, reason, e.Message));
        }

        var value = BigEndian.ToInteger(output);
        if (value >= memberKey.Modulus || memberKey.Apply(value) != em % memberKey.Modulus)
        {
            return (default, new CustodianFailure(member.Name, CustodianFailureReason.WrongPartial, "partial does not satisfy s^e ≡ EM (mod n)"));
        }

        return (value, null);
    }

    private bool HoldsOtherKey(CustodianAddress address, RsaPublicKey recorded)
    {
        try
        {
            var held = stores.Get(address).GetRsaPublicKey(address.ObjectLabel);
            return !held.Equals(recorded);
        }
        catch (ShareStoreException)
        {
            return false; // cannot tell: the refusal stands as reported
        }
    }
}
