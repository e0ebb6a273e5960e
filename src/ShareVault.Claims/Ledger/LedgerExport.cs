using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ShareVault.Claims.Replay;
using ShareVault.Claims.Rules;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Claims.Ledger;

/// <summary>
/// A self-contained ledger export (<c>sharevault-ledger-export/1</c>): the pool, its JWKS, policies,
/// the devices and the evidence COSE records every claim relies on, the hash-chained entries and the
/// signed checkpoints. <see cref="LedgerVerifier"/> checks it with nothing else.
/// </summary>
public static class LedgerExport
{
    public const string Format = "sharevault-ledger-export/1";

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string ToText(JsonObject export) => export.ToJsonString(Indented) + "\n";

    public static string PublicKeyPem(byte[] spki) => PemEncoding.WriteString("PUBLIC KEY", spki);
}

/// <summary>What <see cref="LedgerVerifier"/> holds an export to, beyond its own bytes.</summary>
public sealed record LedgerVerifyOptions
{
    public static LedgerVerifyOptions Default { get; } = new();

    /// <summary>
    /// The record-time bounds the service stored evidence under (<c>ClaimsOptions.EvidenceTime</c>): each
    /// record of a recomputed claim lies in the window around its arrival, and none is timed further
    /// back than the allowed step before the record before it.
    /// </summary>
    public EvidenceTimeLimits EvidenceTime { get; init; } = EvidenceTimeLimits.Default;

    /// <summary>
    /// Accept entries after the last checkpoint (reported in the result as unsigned). Off by default:
    /// the hash chain alone can be recomputed by anyone, so only a threshold signature vouches for an entry.
    /// </summary>
    public bool AcceptUnsignedTail { get; init; }
}

/// <summary>What <see cref="LedgerVerifier"/> found: valid, or the first problem, plus what it checked.</summary>
public sealed record LedgerVerification(bool IsValid, string Detail, int Entries, int Checkpoints, int Payouts, int Reevaluated)
{
    /// <summary>Entries after the last checkpoint (accepted only with <see cref="LedgerVerifyOptions.AcceptUnsignedTail"/>).</summary>
    public int UnsignedEntries { get; init; }

    public static LedgerVerification Invalid(string detail) => new(false, detail, 0, 0, 0, 0);
}

/// <summary>
/// Verifies an export offline and vouches for every byte it accepts: recomputes the hash chain and
/// folds it into the registry it implies (<see cref="PoolRegistry"/>); requires the pool, the JWKS
/// (against <c>jwks_sha256</c>), the policies and the devices to be exactly what the entries say, and
/// each evidence record to verify under its device key and belong to a claim; checks every
/// checkpoint's JWS against the JWKS and that it names the entry hash at its sequence, and that the
/// last one signs the head (else the tail is unsigned: invalid unless
/// <see cref="LedgerVerifyOptions.AcceptUnsignedTail"/>); checks every payout's JWS, that its
/// instruction matches the claim and decision entries, and re-evaluates the claim's trigger from the
/// evidence (<see cref="PayoutReplay"/>). A malformed export gets a reason naming the JSON path.
/// </summary>
public static class LedgerVerifier
{
    public static LedgerVerification Verify(string text, LedgerVerifyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        options ??= LedgerVerifyOptions.Default;
        options.EvidenceTime.Validate();
        JsonObject export;
        try
        {
            export = JsonNode.Parse(text)?.AsObject() ?? throw new JsonException("empty");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            return LedgerVerification.Invalid("not a JSON ledger export: " + e.Message);
        }

        try
        {
            return VerifyCore(export, options);
        }
        catch (Exception e) when (e is FormatException or JsonException or CryptographicException or ArgumentException or OverflowException or InvalidOperationException)
        {
            // FormatException: a required field is missing or mistyped (JsonFields names its path);
            // the rest: a field that is present but not a valid key, PEM, base64url or date.
            return LedgerVerification.Invalid("malformed export: " + e.Message);
        }
    }

    private static readonly string[] ExportMembers = ["format", "pool", "jwks", "policies", "devices", "evidence", "entries", "checkpoints"];
    private static readonly string[] EntryMembers = ["seq", "time", "kind", "body", "prev", "hash"];
    private static readonly string[] PoolMembers = ["id", "name", "currency", "key", "max_payout"];
    private static readonly string[] PolicyMembers = ["id", "member", "rule", "rule_hash", "payout_amount", "votes_required", "context"];
    private static readonly string[] DeviceMembers = ["id", "member", "public_key"];
    private static readonly string[] EvidenceMembers = ["device", "seq", "cose"];
    private static readonly string[] CheckpointMembers = ["seq", "hash", "time", "jws"];

    /// <summary>
    /// Every byte the verifier accepts is vouched for: the entries by their hash chain and the last
    /// checkpoint's threshold signature; the summary sections (pool, JWKS, policies, devices) by
    /// matching exactly what the chained entries imply (<see cref="PoolRegistry"/>, the fold a custody
    /// node runs too); each evidence record by its device's signature and by belonging to a claim.
    /// No member beyond the format's is accepted anywhere outside entry bodies (which the hash covers).
    /// </summary>
    private static LedgerVerification VerifyCore(JsonObject export, LedgerVerifyOptions options)
    {
        if (export["format"] is not JsonValue format || !format.TryGetValue<string>(out var formatText) || formatText != LedgerExport.Format)
        {
            return LedgerVerification.Invalid($"$.format is not {LedgerExport.Format}");
        }

        if (Unexpected(export, "$", ExportMembers) is { } extra)
        {
            return LedgerVerification.Invalid(extra);
        }

        var pool = JsonFields.Object(export["pool"], "$.pool");
        var poolId = JsonFields.String(pool["id"], "$.pool.id"); // part of every entry hash: a wrong one breaks the chain

        // 1. The chain, folded into the registry it implies.
        var registry = new PoolRegistry(poolId);
        var entries = new List<(LedgerEntry Entry, string Path)>();
        foreach (var (e, path) in JsonFields.Objects(export["entries"], "$.entries"))
        {
            if (Unexpected(e, path, EntryMembers) is { } member)
            {
                return LedgerVerification.Invalid(member);
            }

            if (!PoolRegistry.TryRead(poolId, e, out var entry, out var problem))
            {
                return LedgerVerification.Invalid($"{path}: {problem.Replace("$.", path + ".", StringComparison.Ordinal)}");
            }

            var step = registry.Apply(entry!);
            if (!step.Applied)
            {
                return LedgerVerification.Invalid($"{path}: {step.Detail} ({step.Refusal})");
            }

            entries.Add((entry!, path));
        }

        if (registry.Pool is not { } created)
        {
            return LedgerVerification.Invalid("$.entries: there is no pool_created entry");
        }

        // 2. The summary sections, each exactly what the chain says.
        if (Unexpected(pool, "$.pool", PoolMembers) is { } poolMember)
        {
            return LedgerVerification.Invalid(poolMember);
        }

        var currency = JsonFields.String(pool["currency"], "$.pool.currency");
        foreach (var (field, listed, chained) in new[]
        {
            ("name", JsonFields.String(pool["name"], "$.pool.name"), created.Name),
            ("currency", currency, created.Currency),
            ("key", JsonFields.String(pool["key"], "$.pool.key"), created.KeyName),
            ("max_payout", JsonFields.Int64(pool["max_payout"], "$.pool.max_payout").ToString(System.Globalization.CultureInfo.InvariantCulture), created.MaxPayout.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        })
        {
            if (!string.Equals(listed, chained, StringComparison.Ordinal))
            {
                return LedgerVerification.Invalid($"$.pool.{field} differs from the pool_created entry");
            }
        }

        var jwks = JsonFields.Object(export["jwks"], "$.jwks");
        if (Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(jwks))) != created.JwksSha256)
        {
            return LedgerVerification.Invalid("$.jwks: its SHA-256 (RFC 8785 canonical JSON) differs from the pool_created entry's jwks_sha256");
        }

        var keys = new Dictionary<string, RsaPublicKey>(StringComparer.Ordinal);
        foreach (var (key, path) in JsonFields.Objects(jwks["keys"], "$.jwks.keys"))
        {
            keys[JsonFields.String(key["kid"], path + ".kid")] = RsaPublicKey.FromJwk(key);
        }

        var policies = new Dictionary<string, (JsonObject Policy, string Path)>(StringComparer.Ordinal);
        foreach (var (p, path) in JsonFields.Objects(export["policies"], "$.policies"))
        {
            if (CheckPolicy(p, path, registry) is { } problem)
            {
                return LedgerVerification.Invalid(problem);
            }

            if (!policies.TryAdd(JsonFields.String(p["id"], path + ".id"), (p, path)))
            {
                return LedgerVerification.Invalid($"{path}: policy '{p["id"]}' is listed twice");
            }
        }

        if (registry.Policies.Keys.FirstOrDefault(id => !policies.ContainsKey(id)) is { } unlistedPolicy)
        {
            return LedgerVerification.Invalid($"$.policies: policy '{unlistedPolicy}' is issued in the ledger but not listed");
        }

        var devices = new Dictionary<string, (JsonObject Device, string Path)>(StringComparer.Ordinal);
        foreach (var (d, path) in JsonFields.Objects(export["devices"], "$.devices"))
        {
            if (CheckDevice(d, path, registry) is { } problem)
            {
                return LedgerVerification.Invalid(problem);
            }

            if (!devices.TryAdd(JsonFields.String(d["id"], path + ".id"), (d, path)))
            {
                return LedgerVerification.Invalid($"{path}: device '{d["id"]}' is listed twice");
            }
        }

        if (registry.Devices.Keys.FirstOrDefault(id => !devices.ContainsKey(id)) is { } unlistedDevice)
        {
            return LedgerVerification.Invalid($"$.devices: device '{unlistedDevice}' is enrolled in the ledger but not listed");
        }

        var evidence = new Dictionary<(string, long), byte[]>();
        foreach (var (e, path) in JsonFields.Objects(export["evidence"], "$.evidence"))
        {
            var (problem, id, cose) = CheckEvidence(e, path, registry, devices);
            if (problem is not null)
            {
                return LedgerVerification.Invalid(problem);
            }

            if (!evidence.TryAdd(id, cose!))
            {
                return LedgerVerification.Invalid($"{path}: evidence {id.Item1}#{id.Item2} is listed twice");
            }
        }

        // 3. Checkpoints: in order, each signed by the pool key over the entry hash at its sequence; the
        // last one must sign the head, or what follows it is an unsigned tail anyone could have appended.
        var checkpoints = JsonFields.Objects(export["checkpoints"], "$.checkpoints").ToList();
        long signedThrough = 0;
        foreach (var (c, path) in checkpoints)
        {
            if (Unexpected(c, path, CheckpointMembers) is { } member)
            {
                return LedgerVerification.Invalid(member);
            }

            var seq = JsonFields.Int64(c["seq"], path + ".seq");
            var hash = JsonFields.String(c["hash"], path + ".hash");
            if (seq <= signedThrough)
            {
                return LedgerVerification.Invalid($"{path}.seq: checkpoint {seq} does not follow the one at {signedThrough}");
            }

            if (seq > entries.Count || entries[(int)seq - 1].Entry.Hash != hash)
            {
                return LedgerVerification.Invalid($"checkpoint {seq} does not name the entry hash at {seq}");
            }

            var expected = LedgerCheckpoint.Payload(poolId, seq, hash, JsonFields.String(c["time"], path + ".time"));
            var (ok, detail, signedPayload) = CheckJws(JsonFields.String(c["jws"], path + ".jws"), keys);
            if (!ok)
            {
                return LedgerVerification.Invalid($"checkpoint {seq}: {detail}");
            }

            if (!signedPayload.AsSpan().SequenceEqual(expected))
            {
                return LedgerVerification.Invalid($"checkpoint {seq}: the signed payload differs from the checkpoint fields");
            }

            signedThrough = seq;
        }

        string? unsignedTail = null;
        if (signedThrough < entries.Count)
        {
            unsignedTail = $"entries {signedThrough + 1}-{entries.Count} follow the last checkpoint ({(signedThrough == 0 ? "there is none" : $"at {signedThrough}")}) and are not threshold-signed";
            if (!options.AcceptUnsignedTail)
            {
                return LedgerVerification.Invalid(unsignedTail + "; accept them only knowingly (--accept-unsigned-tail)");
            }
        }

        // 4. Payouts, with the trigger recomputed from evidence.
        var opened = new Dictionary<string, (JsonObject Body, string Path, string Time)>(StringComparer.Ordinal);
        var approved = new HashSet<string>(StringComparer.Ordinal);
        var paid = new HashSet<string>(StringComparer.Ordinal);
        var reevaluated = 0;
        foreach (var (entry, path) in entries)
        {
            var body = entry.Body;
            var bodyPath = path + ".body";
            switch (entry.Kind)
            {
                case LedgerEntry.ClaimOpened:
                    opened[JsonFields.String(body["claim"], bodyPath + ".claim")] = (body, bodyPath, entry.Time);
                    break;
                // The export carries ClaimStatus.Approved as its fixed text (Lifecycle sits above Ledger, so not the enum).
                case LedgerEntry.Decision when JsonFields.String(body["decision"], bodyPath + ".decision") == "approved":
                    approved.Add(JsonFields.String(body["claim"], bodyPath + ".claim"));
                    break;
                case LedgerEntry.Payout:
                    var claimId = JsonFields.String(body["claim"], bodyPath + ".claim");
                    if (!paid.Add(claimId))
                    {
                        return LedgerVerification.Invalid($"claim {claimId} is paid twice");
                    }

                    if (!opened.TryGetValue(claimId, out var claim) || !approved.Contains(claimId))
                    {
                        return LedgerVerification.Invalid($"payout for {claimId} without an opened and approved claim before it");
                    }

                    var problem = CheckPayout(new PayoutEntry(body, bodyPath, claim.Body, claim.Path, claim.Time), poolId, currency, keys, policies, devices, evidence, options);
                    if (problem is not null)
                    {
                        return LedgerVerification.Invalid($"payout for {claimId}: {problem}");
                    }

                    reevaluated++;
                    break;
            }
        }

        var summary = $"{entries.Count} entries chained, {checkpoints.Count} checkpoint(s) and {paid.Count} payout(s) verified, {reevaluated} trigger(s) recomputed from evidence";
        return new LedgerVerification(true, unsignedTail is null ? summary : $"{summary}; UNSIGNED: {unsignedTail}", entries.Count, checkpoints.Count, paid.Count, reevaluated)
        {
            UnsignedEntries = entries.Count - (int)signedThrough,
        };
    }

    /// <summary>The first member of <paramref name="node"/> the format does not define, as a problem naming its path.</summary>
    private static string? Unexpected(JsonObject node, string path, string[] members) =>
        node.Select(p => p.Key).FirstOrDefault(k => !members.Contains(k, StringComparer.Ordinal)) is { } key
            ? $"{path}.{key}: not a member of {LedgerExport.Format} (nothing in the ledger vouches for it)"
            : null;

    private static string? CheckPolicy(JsonObject p, string path, PoolRegistry registry)
    {
        if (Unexpected(p, path, PolicyMembers) is { } member)
        {
            return member;
        }

        var id = JsonFields.String(p["id"], path + ".id");
        if (!registry.Policies.TryGetValue(id, out var chained))
        {
            return $"{path}.id: no policy_issued entry issues '{id}'";
        }

        var listed = new (string Field, string Listed, string Chained)[]
        {
            ("member", JsonFields.String(p["member"], path + ".member"), chained.MemberId),
            ("rule", JsonFields.String(p["rule"], path + ".rule"), chained.Rule),
            ("rule_hash", JsonFields.String(p["rule_hash"], path + ".rule_hash"), chained.RuleHash),
            ("payout_amount", Number(JsonFields.Int64(p["payout_amount"], path + ".payout_amount")), Number(chained.PayoutAmount)),
            ("votes_required", Number(JsonFields.Int64(p["votes_required"], path + ".votes_required")), Number(chained.VotesRequired)),
            ("context", CanonicalJson.SerializeToString(JsonFields.Object(p["context"], path + ".context")), CanonicalJson.SerializeToString(chained.Context)),
        };
        return listed.FirstOrDefault(x => !string.Equals(x.Listed, x.Chained, StringComparison.Ordinal)) is { Field: not null } differs
            ? $"{path}.{differs.Field} differs from the policy_issued entry of '{id}'"
            : null;
    }

    private static string? CheckDevice(JsonObject d, string path, PoolRegistry registry)
    {
        if (Unexpected(d, path, DeviceMembers) is { } member)
        {
            return member;
        }

        var id = JsonFields.String(d["id"], path + ".id");
        if (!registry.Devices.TryGetValue(id, out var chained))
        {
            return $"{path}.id: no device_enrolled entry enrols '{id}'";
        }

        if (JsonFields.String(d["member"], path + ".member") != chained.MemberId)
        {
            return $"{path}.member differs from the device_enrolled entry of '{id}'";
        }

        var pem = JsonFields.String(d["public_key"], path + ".public_key");
        byte[] spki;
        try
        {
            var fields = PemEncoding.Find(pem);
            spki = Convert.FromBase64String(pem[fields.Base64Data]);
            if (pem[fields.Label] is not "PUBLIC KEY" || LedgerExport.PublicKeyPem(spki) != pem)
            {
                return $"{path}.public_key is not the one PEM PUBLIC KEY block the export writes";
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            return $"{path}.public_key is not a PEM public key";
        }

        return Convert.ToHexStringLower(SHA256.HashData(spki)) == chained.KeySha256 ? null : $"{path}.public_key: its SHA-256 differs from the device_enrolled entry's key_sha256";
    }

    /// <summary>
    /// One evidence record: it lies in the range of a claim of its device (from the record before the
    /// claim's first to its last: what the export carries and nothing else), verifies under the device's
    /// listed key as that device and sequence number, and has the hash the claim lists for it.
    /// </summary>
    private static (string? Problem, (string, long) Id, byte[]? Cose) CheckEvidence(JsonObject e, string path, PoolRegistry registry, Dictionary<string, (JsonObject Device, string Path)> devices)
    {
        if (Unexpected(e, path, EvidenceMembers) is { } member)
        {
            return (member, default, null);
        }

        var deviceId = JsonFields.String(e["device"], path + ".device");
        var seq = JsonFields.Int64(e["seq"], path + ".seq");
        var text = JsonFields.String(e["cose"], path + ".cose");
        byte[] cose;
        try
        {
            cose = Base64Url.Decode(text);
        }
        catch (FormatException)
        {
            return ($"{path}.cose is not base64url", default, null);
        }

        if (Base64Url.Encode(cose) != text)
        {
            return ($"{path}.cose is not canonical base64url (RFC 4648 §5, no padding)", default, null);
        }

        var claims = registry.Claims.Values.Where(c => c.DeviceId == deviceId && seq >= c.Evidence[0].Seq - 1 && seq <= c.Evidence[^1].Seq).ToList();
        if (claims.Count == 0)
        {
            return ($"{path}: {deviceId}#{seq} lies in no claim's evidence range", default, null);
        }

        if (!devices.TryGetValue(deviceId, out var device))
        {
            return ($"{path}.device: '{deviceId}' is not in $.devices", default, null);
        }

        using var key = ECDsa.Create();
        key.ImportFromPem(JsonFields.String(device.Device["public_key"], device.Path + ".public_key"));
        var verification = EvidenceVerifier.Verify(cose, id => id == deviceId ? key : null);
        if (!verification.IsValid || verification.Record!.Sequence != seq)
        {
            return ($"{path}.cose: evidence {deviceId}#{seq} does not verify ({(verification.IsValid ? "it carries sequence " + verification.Record!.Sequence : verification.Reason + ": " + verification.Detail)})", default, null);
        }

        var hash = Convert.ToHexStringLower(verification.Hash);
        if (claims.SelectMany(c => c.Evidence).Any(x => x.Seq == seq && x.Sha256 != hash))
        {
            return ($"{path}.cose: evidence {deviceId}#{seq} hash differs from the claim", default, null);
        }

        return (null, (deviceId, seq), cose);
    }

    private static string Number(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A payout entry's body and the claim_opened body it pays, with their JSON paths, and the claim_opened entry's time.</summary>
    private sealed record PayoutEntry(JsonObject Body, string BodyPath, JsonObject Claim, string ClaimPath, string ClaimTime);

    private static string? CheckPayout(PayoutEntry entry, string poolId, string currency, Dictionary<string, RsaPublicKey> keys,
        Dictionary<string, (JsonObject Policy, string Path)> policies, Dictionary<string, (JsonObject Device, string Path)> devices, Dictionary<(string, long), byte[]> evidence,
        LedgerVerifyOptions options)
    {
        var (body, bodyPath, claim, claimPath, claimTime) = entry;
        var (ok, detail, payload) = CheckJws(JsonFields.String(body["jws"], bodyPath + ".jws"), keys);
        if (!ok)
        {
            return detail;
        }

        if (JsonNode.Parse(payload!) is not JsonObject instruction)
        {
            return "the signed instruction is not a JSON object";
        }

        if (CanonicalJson.SerializeToString(instruction) != Encoding.UTF8.GetString(payload!))
        {
            return "the signed instruction is not canonical JSON";
        }

        var claimId = JsonFields.String(claim["claim"], claimPath + ".claim");
        if (!policies.TryGetValue(JsonFields.String(claim["policy"], claimPath + ".policy"), out var listedPolicy))
        {
            return "its policy is not in the export";
        }

        var (policy, policyPath) = listedPolicy;
        var ruleText = JsonFields.String(policy["rule"], policyPath + ".rule");
        var ruleHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ruleText)));
        var claimEvidence = JsonFields.Objects(claim["evidence"], claimPath + ".evidence")
            .Select(x => (Seq: JsonFields.Int64(x.Item["seq"], x.Path + ".seq"), Hash: JsonFields.String(x.Item["sha256"], x.Path + ".sha256"),
                ReceivedAt: x.Item["received_at"] is null ? null : JsonFields.String(x.Item["received_at"], x.Path + ".received_at"), ReceivedPath: x.Path + ".received_at")).ToList();
        if (claimEvidence.Count == 0)
        {
            return "the claim lists no evidence";
        }

        var signedEvidence = instruction["evidence"] is JsonArray hashes ? hashes.Select(x => x is JsonValue v && v.TryGetValue<string>(out var h) ? h : null).ToList() : null;
        if (Text(instruction["claim"]) != claimId
            || Text(instruction["pool"]) != poolId
            || Text(instruction["member"]) != JsonFields.String(claim["member"], claimPath + ".member")
            || Number(instruction["amount"]) != JsonFields.Int64(claim["amount"], claimPath + ".amount")
            || Number(instruction["amount"]) != JsonFields.Int64(body["amount"], bodyPath + ".amount")
            || Text(instruction["currency"]) != currency
            || Text(instruction["rule_hash"]) != ruleHash
            || JsonFields.String(policy["rule_hash"], policyPath + ".rule_hash") != ruleHash
            || signedEvidence is null
            || !signedEvidence.SequenceEqual(claimEvidence.Select(x => x.Hash)))
        {
            return "the signed instruction does not match the claim, its policy or the rule hash";
        }

        // Recompute the trigger: verify each COSE record under its device key, then replay the
        // records with the code the service ran (PayoutReplay, which a custody node's guard runs too).
        var deviceId = JsonFields.String(claim["device"], claimPath + ".device");
        if (!devices.TryGetValue(deviceId, out var device))
        {
            return $"device {deviceId} is not in the export";
        }

        if (!TriggerRule.TryParse(ruleText, out _, out var reason))
        {
            return "the policy rule does not parse: " + reason;
        }

        var context = RuleContextJson.Read(JsonFields.Object(policy["context"], policyPath + ".context"));
        using var key = ECDsa.Create();
        key.ImportFromPem(JsonFields.String(device.Device["public_key"], device.Path + ".public_key"));
        var arrivals = new Dictionary<long, DateTimeOffset?>();
        if (!TryTime(claimTime, out var opened))
        {
            return $"{claimPath}: the claim_opened entry's time '{claimTime}' is not a ledger time";
        }

        foreach (var x in claimEvidence)
        {
            if (x.ReceivedAt is null)
            {
                arrivals[x.Seq] = null; // not listed (the record was no longer stored when the claim opened): it arrived by the claim's time
                continue;
            }

            if (!TryTime(x.ReceivedAt, out var arrival))
            {
                return $"{x.ReceivedPath}: '{x.ReceivedAt}' is not a ledger time (yyyy-MM-ddTHH:mm:ss.fffZ)";
            }

            if (arrival > opened)
            {
                return $"evidence {deviceId}#{x.Seq} is said to arrive at {x.ReceivedAt}, after the claim it opened ({claimTime})";
            }

            arrivals[x.Seq] = arrival;
        }

        var replayed = PayoutReplay.Check(deviceId, key, ruleText, context, [.. claimEvidence.Select(x => (x.Seq, x.Hash))],
            seq => evidence.TryGetValue((deviceId, seq), out var cose) ? cose : null, "the export", options.EvidenceTime,
            arrivals.ToDictionary(a => a.Key, a => a.Value ?? opened), arrivals.Where(a => a.Value is null).Select(a => a.Key).ToHashSet(),
            ClaimPredecessor.Read(claim, claimPath, claimEvidence[0].Seq), decidedAt: opened);
        return replayed.Fired ? null : replayed.Detail;
    }

    /// <summary>A ledger time as <see cref="LedgerEntry.FormatTime"/> writes it, and only that spelling.</summary>
    private static bool TryTime(string text, out DateTimeOffset time) =>
        DateTimeOffset.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out time);

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static long? Number(JsonNode? node) => node is JsonValue v && v.TryGetValue<long>(out var n) ? n : null;

    private static (bool Ok, string Detail, byte[]? Payload) CheckJws(string text, Dictionary<string, RsaPublicKey> keys)
    {
        if (!Jws.TryParse(text, out var jws))
        {
            return (false, "not a compact JWS", null);
        }

        if (jws.Kid is null || !keys.TryGetValue(jws.Kid, out var key))
        {
            return (false, $"JWS kid '{jws.Kid}' is not in the pool JWKS", null);
        }

        return Jws.Verify(jws, key) ? (true, "valid", jws.Payload) : (false, $"JWS signature does not verify under {jws.Kid}", null);
    }
}
