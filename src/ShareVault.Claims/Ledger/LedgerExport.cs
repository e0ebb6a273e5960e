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

/// <summary>What <see cref="LedgerVerifier"/> found: valid, or the first problem, plus what it checked.</summary>
public sealed record LedgerVerification(bool IsValid, string Detail, int Entries, int Checkpoints, int Payouts, int Reevaluated)
{
    public static LedgerVerification Invalid(string detail) => new(false, detail, 0, 0, 0, 0);
}

/// <summary>
/// Verifies an export offline: recomputes the hash chain; checks every checkpoint's JWS against the
/// export's JWKS and that it names the entry hash at its sequence; checks every payout's JWS, that
/// its instruction matches the claim and decision entries, and re-evaluates the claim's trigger from
/// the evidence COSE records (each verified under its device key) and the policy's rule text.
/// </summary>
public static class LedgerVerifier
{
    public static LedgerVerification Verify(string text)
    {
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
            return VerifyCore(export);
        }
        catch (Exception e) when (e is FormatException or JsonException or CryptographicException or ArgumentException or OverflowException)
        {
            // FormatException: a required field is missing or mistyped (JsonFields names its path);
            // the rest: a field that is present but not a valid key, PEM, base64url or date.
            return LedgerVerification.Invalid("malformed export: " + e.Message);
        }
    }

    private static LedgerVerification VerifyCore(JsonObject export)
    {
        if (export["format"] is not JsonValue format || !format.TryGetValue<string>(out var formatText) || formatText != LedgerExport.Format)
        {
            return LedgerVerification.Invalid($"format is not {LedgerExport.Format}");
        }

        var pool = JsonFields.Object(export["pool"], "$.pool");
        var poolId = JsonFields.String(pool["id"], "$.pool.id");
        var currency = JsonFields.String(pool["currency"], "$.pool.currency");
        var keys = new Dictionary<string, RsaPublicKey>(StringComparer.Ordinal);
        foreach (var (key, path) in JsonFields.Objects(JsonFields.Object(export["jwks"], "$.jwks")["keys"], "$.jwks.keys"))
        {
            keys[JsonFields.String(key["kid"], path + ".kid")] = RsaPublicKey.FromJwk(key);
        }

        // 1. The chain.
        var entries = JsonFields.Objects(export["entries"], "$.entries").ToList();
        var previous = LedgerEntry.Genesis;
        for (var i = 0; i < entries.Count; i++)
        {
            var (e, path) = entries[i];
            var seq = JsonFields.Int64(e["seq"], path + ".seq");
            if (seq != i + 1)
            {
                return LedgerVerification.Invalid($"entry {i + 1} carries sequence {seq}");
            }

            if (JsonFields.String(e["prev"], path + ".prev") != previous)
            {
                return LedgerVerification.Invalid($"entry {seq}: prev does not match the hash of entry {seq - 1}");
            }

            var hash = LedgerEntry.ComputeHash(poolId, seq, JsonFields.String(e["time"], path + ".time"), JsonFields.String(e["kind"], path + ".kind"),
                JsonFields.Object(e["body"], path + ".body"), previous);
            if (hash != JsonFields.String(e["hash"], path + ".hash"))
            {
                return LedgerVerification.Invalid($"entry {seq}: hash mismatch (the entry was altered)");
            }

            previous = hash;
        }

        // 2. Checkpoints.
        var checkpoints = JsonFields.Objects(export["checkpoints"], "$.checkpoints").ToList();
        foreach (var (c, path) in checkpoints)
        {
            var seq = JsonFields.Int64(c["seq"], path + ".seq");
            var hash = JsonFields.String(c["hash"], path + ".hash");
            if (seq < 1 || seq > entries.Count || JsonFields.String(entries[(int)seq - 1].Item["hash"], entries[(int)seq - 1].Path + ".hash") != hash)
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
        }

        // 3. Payouts, with the trigger recomputed from evidence.
        var policies = new Dictionary<string, (JsonObject Policy, string Path)>(StringComparer.Ordinal);
        foreach (var (p, path) in JsonFields.Objects(export["policies"], "$.policies"))
        {
            policies[JsonFields.String(p["id"], path + ".id")] = (p, path);
        }

        var devices = new Dictionary<string, (JsonObject Device, string Path)>(StringComparer.Ordinal);
        foreach (var (d, path) in JsonFields.Objects(export["devices"], "$.devices"))
        {
            devices[JsonFields.String(d["id"], path + ".id")] = (d, path);
        }

        var evidence = new Dictionary<(string, long), byte[]>();
        foreach (var (e, path) in JsonFields.Objects(export["evidence"], "$.evidence"))
        {
            evidence[(JsonFields.String(e["device"], path + ".device"), JsonFields.Int64(e["seq"], path + ".seq"))] = Base64Url.Decode(JsonFields.String(e["cose"], path + ".cose"));
        }

        var opened = new Dictionary<string, (JsonObject Body, string Path)>(StringComparer.Ordinal);
        var approved = new HashSet<string>(StringComparer.Ordinal);
        var paid = new HashSet<string>(StringComparer.Ordinal);
        var reevaluated = 0;
        foreach (var (e, path) in entries)
        {
            var body = (JsonObject)e["body"]!; // checked in step 1
            var bodyPath = path + ".body";
            switch (e["kind"]!.GetValue<string>())
            {
                case LedgerEntry.ClaimOpened:
                    opened[JsonFields.String(body["claim"], bodyPath + ".claim")] = (body, bodyPath);
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

                    var problem = CheckPayout(new PayoutEntry(body, bodyPath, claim.Body, claim.Path), poolId, currency, keys, policies, devices, evidence);
                    if (problem is not null)
                    {
                        return LedgerVerification.Invalid($"payout for {claimId}: {problem}");
                    }

                    reevaluated++;
                    break;
            }
        }

        return new LedgerVerification(true, $"{entries.Count} entries chained, {checkpoints.Count} checkpoint(s) and {paid.Count} payout(s) verified, {reevaluated} trigger(s) recomputed from evidence",
            entries.Count, checkpoints.Count, paid.Count, reevaluated);
    }

    /// <summary>A payout entry's body and the claim_opened body it pays, with their JSON paths.</summary>
    private sealed record PayoutEntry(JsonObject Body, string BodyPath, JsonObject Claim, string ClaimPath);

    private static string? CheckPayout(PayoutEntry entry, string poolId, string currency, Dictionary<string, RsaPublicKey> keys,
        Dictionary<string, (JsonObject Policy, string Path)> policies, Dictionary<string, (JsonObject Device, string Path)> devices, Dictionary<(string, long), byte[]> evidence)
    {
        var (body, bodyPath, claim, claimPath) = entry;
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
            .Select(x => (Seq: JsonFields.Int64(x.Item["seq"], x.Path + ".seq"), Hash: JsonFields.String(x.Item["sha256"], x.Path + ".sha256"))).ToList();
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
        var replayed = PayoutReplay.Check(deviceId, key, ruleText, context, claimEvidence, seq => evidence.TryGetValue((deviceId, seq), out var cose) ? cose : null, "the export");
        return replayed.Fired ? null : replayed.Detail;
    }

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
