using System.Numerics;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>
/// The Shoup coordinator: x = EMSA-PKCS1-v1_5(SHA-256) at |N|, z = x^(2Δ), t partials z^sᵢ
/// asked in parallel (unreachable or slow custodians replaced by the next ones), combination in the
/// exponent, and y^e = x checked. When y does not verify, the coordinator asks every custodian for
/// its partial on the verification base v and compares it with the published vᵢ (a replaced or
/// damaged share shows there), then tries other t-subsets of the partials it has (Shoup §2 without
/// proofs: a subset whose result verifies is all good) and names every custodian whose partial
/// spoils a good subset.
/// </summary>
internal sealed class ShoupSigner(Func<CustodianAddress, IShareStore> open, Action<CustodianAddress> forget, TimeSpan partialTimeout)
{
    public ShoupSigner(ShareStoreRegistry stores, TimeSpan partialTimeout)
        : this(stores.Get, stores.Forget, partialTimeout)
    {
    }

    public Task<ThresholdSignature> SignAsync(KeyRecord record, Func<string, byte[]> messageForKid, string? kid, CancellationToken cancellationToken) =>
        SignAsync(record, messageForKid, kid, null, cancellationToken);

    public async Task<ThresholdSignature> SignAsync(KeyRecord record, Func<string, byte[]> messageForKid, string? kid, PartialJustification? justification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messageForKid);
        var key = ShoupKey.From(record);
        if (kid is not null && kid != record.Name)
        {
            throw new KeyCatalogException($"Key '{record.Name}' has one verification key, '{record.Name}', not '{kid}'");
        }

        var message = messageForKid(record.Name);
        var em = Pkcs1Encoding.EncodeSha256(message, key.PublicKey.ByteLength);
        var x = BigEndian.ToInteger(em);
        var z = ShoupMath.PartialBase(x, key.Delta, key.Modulus);
        var t = record.Threshold;
        var request = new JustifiedPartialRequest(record.Name, string.Empty, KeyScheme.ShoupRsa, record.Name, message, [], justification);

        var failures = new List<CustodianFailure>();
        var partials = new Dictionary<CustodianRecord, BigInteger>();
        var waiting = new Queue<CustodianRecord>(record.Custodians);

        // Phase 1: t partials in parallel; replace each custodian that fails by the next one.
        while (partials.Count < t && waiting.Count > 0)
        {
            var batch = new List<CustodianRecord>();
            while (partials.Count + batch.Count < t && waiting.Count > 0)
            {
                batch.Add(waiting.Dequeue());
            }

            await CollectAsync(key, batch, z, request, partials, failures, cancellationToken).ConfigureAwait(false);
        }

        if (partials.Count < t)
        {
            throw new ThresholdSigningException(
                $"Key '{record.Name}' needs {t} partials and got {partials.Count} ({t} of {record.Custodians.Count} custodians needed)", failures);
        }

        var y = TryCombine(key, x, partials);
        if (y is { } good)
        {
            return Result(key, good, partials.Keys, failures);
        }

        // Phase 2: some partial is wrong. Gather every partial we can, check shares against vᵢ.
        await CollectAsync(key, [.. waiting], z, request, partials, failures, cancellationToken).ConfigureAwait(false);
        var named = await CheckVerificationValuesAsync(key, [.. partials.Keys], cancellationToken).ConfigureAwait(false);
        foreach (var failure in named)
        {
            partials.Remove(record.Custodian(failure.Custodian));
            failures.Add(failure);
        }

        var found = FindGoodSubset(key, x, partials);
        if (found is { } subset)
        {
            // Every custodian that spoils the good subset is wrong (the others in it are right).
            foreach (var (custodian, _) in partials.Where(p => !subset.Signers.Contains(p.Key)).ToList())
            {
                var probe = subset.Signers.Skip(1).Append(custodian).ToDictionary(c => c, c => partials[c]);
                if (TryCombine(key, x, probe) is null)
                {
                    failures.Add(new CustodianFailure(custodian.Name, CustodianFailureReason.WrongPartial, "its partial spoils an otherwise valid combination"));
                }
            }

            return Result(key, subset.Signature, subset.Signers, failures);
        }

        throw new ThresholdSigningException(
            named.Count == 0
                ? $"Combined signature of key '{record.Name}' does not verify and no t-subset of the {partials.Count} partials does; the wrong custodian could not be identified"
                : $"Combined signature of key '{record.Name}' does not verify; too few good custodians remain",
            failures);
    }

    private static ThresholdSignature Result(ShoupKey key, BigInteger y, IEnumerable<CustodianRecord> signers, List<CustodianFailure> failures) =>
        new(key.Record.Name, BigEndian.ToBytes(y, key.PublicKey.ByteLength), [.. signers.Select(s => s.Name)], failures);

    /// <summary>y if the partials combine into a valid signature on x, else null.</summary>
    internal static BigInteger? TryCombine(ShoupKey key, BigInteger x, IReadOnlyDictionary<CustodianRecord, BigInteger> partials)
    {
        var byIndex = partials.ToDictionary(p => ShoupKey.Index(p.Key), p => p.Value);
        BigInteger y;
        try
        {
            y = ShoupMath.Combine(x, byIndex, key.Modulus, key.PublicKey.Exponent, key.Delta);
        }
        catch (ArithmeticException)
        {
            // A partial that is not a unit mod N cannot be inverted: certainly wrong.
            return null;
        }

        return key.PublicKey.Apply(y) == x ? y : null;
    }

    private static (BigInteger Signature, List<CustodianRecord> Signers)? FindGoodSubset(ShoupKey key, BigInteger x, Dictionary<CustodianRecord, BigInteger> partials)
    {
        var members = partials.Keys.OrderBy(ShoupKey.Index).ToList();
        foreach (var subset in Subsets(members, key.Record.Threshold))
        {
            var y = TryCombine(key, x, subset.ToDictionary(c => c, c => partials[c]));
            if (y is { } good)
            {
                return (good, subset);
            }
        }

        return null;
    }

    private static IEnumerable<List<CustodianRecord>> Subsets(List<CustodianRecord> items, int size)
    {
        if (size == 0)
        {
            yield return [];
            yield break;
        }

        for (var i = 0; i <= items.Count - size; i++)
        {
            foreach (var rest in Subsets(items[(i + 1)..], size - 1))
            {
                rest.Insert(0, items[i]);
                yield return rest;
            }
        }
    }

    private async Task CollectAsync(ShoupKey key, List<CustodianRecord> custodians, BigInteger z, JustifiedPartialRequest request, Dictionary<CustodianRecord, BigInteger> partials, List<CustodianFailure> failures, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(custodians.Select(c => PartialAsync(key, c, z, cancellationToken, request))).ConfigureAwait(false);
        for (var i = 0; i < custodians.Count; i++)
        {
            if (results[i].Failure is { } failure)
            {
                failures.Add(failure);
            }
            else
            {
                partials[custodians[i]] = results[i].Value;
            }
        }
    }

    /// <summary>Asks each custodian for v^sᵢ and names those whose answer is not the published vᵢ.</summary>
    private async Task<List<CustodianFailure>> CheckVerificationValuesAsync(ShoupKey key, List<CustodianRecord> custodians, CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(custodians.Select(c => PartialAsync(key, c, key.VerificationBase, cancellationToken))).ConfigureAwait(false);
        var named = new List<CustodianFailure>();
        for (var i = 0; i < custodians.Count; i++)
        {
            if (results[i].Failure is { } failure)
            {
                named.Add(failure);
            }
            else if (results[i].Value != ShoupKey.VerificationValue(custodians[i]))
            {
                named.Add(new CustodianFailure(custodians[i].Name, CustodianFailureReason.WrongPartial,
                    "its share does not reproduce its verification value v_i: the share object was replaced or damaged"));
            }
        }

        return named;
    }

    /// <summary>
    /// The custodian's partial on <paramref name="input"/>. With <paramref name="justified"/>, a custody
    /// node is sent the signing input and computes z itself; without it (the verification base v) it
    /// raises v, which it accepts because vᵢ = v^sᵢ is public.
    /// </summary>
    private async Task<(BigInteger Value, CustodianFailure? Failure)> PartialAsync(ShoupKey key, CustodianRecord custodian, BigInteger input, CancellationToken cancellationToken, JustifiedPartialRequest? justified = null)
    {
        var address = new CustodianAddress(custodian.Name, custodian.Uri, custodian.ObjectLabel, custodian.Kind);
        var bytes = BigEndian.ToBytes(input, key.PublicKey.ByteLength);
        byte[] output;
        try
        {
            var opened = await Task.Run(() => open(address), cancellationToken).ConfigureAwait(false);
            if (justified is not null && opened is IJustifyingCustodian node)
            {
                using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                deadline.CancelAfter(partialTimeout);
                try
                {
                    output = BigEndian.ToBytes(await node.PartialAsync(justified with { ObjectLabel = address.ObjectLabel }, deadline.Token).ConfigureAwait(false));
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException();
                }
                catch (CustodianRefusedException e)
                {
                    return (default, new CustodianFailure(custodian.Name, CustodianFailureReason.Refused, e.Detail, e.Code));
                }
            }
            else
            {
                output = await Task.Run(() => opened is IShoupShareStore store
                        ? store.ShoupPartial(address.ObjectLabel, bytes)
                        : throw new ShareStoreException(ShareStoreError.MechanismNotSupported, $"Custodian '{custodian.Name}' cannot compute Shoup partials"),
                        cancellationToken)
                    .WaitAsync(partialTimeout, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (TimeoutException)
        {
            forget(address);
            return (default, new CustodianFailure(custodian.Name, CustodianFailureReason.TimedOut, $"no partial within {partialTimeout.TotalSeconds:0.#} s"));
        }
        catch (ShareStoreException e)
        {
            if (e.IsTransient)
            {
                forget(address);
            }

            var reason = e.Error switch
            {
                ShareStoreError.KeyNotFound => CustodianFailureReason.KeyMissing,
                ShareStoreError.DeviceUnreachable or ShareStoreError.TokenNotFound or ShareStoreError.ModuleNotFound => CustodianFailureReason.Unreachable,
                _ => CustodianFailureReason.Refused,
            };
            return (default, new CustodianFailure(custodian.Name, reason, e.Message));
        }

        var value = BigEndian.ToInteger(output);
        if (value.IsZero || value >= key.Modulus)
        {
            return (default, new CustodianFailure(custodian.Name, CustodianFailureReason.WrongPartial, "partial is not a residue mod N"));
        }

        return (value, null);
    }
}
