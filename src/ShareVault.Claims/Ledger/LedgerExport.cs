using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
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
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or ArgumentException
            or KeyNotFoundException or JsonException or CryptographicException or OverflowException)
        {
            return LedgerVerification.Invalid("malformed export: " + e.Message);
        }
    }

    private static LedgerVerification VerifyCore(JsonObject export)
    {
        if (export["format"]?.GetValue<string>() != LedgerExport.Format)
        {
            return LedgerVerification.Invalid($"format is not {LedgerExport.Format}");
        }

        var poolId = export["pool"]!["id"]!.GetValue<string>();
        var currency = export["pool"]!["currency"]!.GetValue<string>();
        var keys = export["jwks"]!["keys"]!.AsArray().ToDictionary(k => k!["kid"]!.GetValue<string>(), k => RsaPublicKey.FromJwk(k!), StringComparer.Ordinal);

        // 1. The chain.
        var entries = export["entries"]!.AsArray().Select(e => e!.AsObject()).ToList();
        var previous = LedgerEntry.Genesis;
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            var seq = e["seq"]!.GetValue<long>();
            if (seq != i + 1)
            {
                return LedgerVerification.Invalid($"entry {i + 1} carries sequence {seq}");
            }

            if (e["prev"]!.GetValue<string>() != previous)
            {
                return LedgerVerification.Invalid($"entry {seq}: prev does not match the hash of entry {seq - 1}");
            }

            var hash = LedgerEntry.ComputeHash(poolId, seq, e["time"]!.GetValue<string>(), e["kind"]!.GetValue<string>(), e["body"]!.AsObject(), previous);
            if (hash != e["hash"]!.GetValue<string>())
            {
                return LedgerVerification.Invalid($"entry {seq}: hash mismatch (the entry was altered)");
            }

            previous = hash;
        }

        // 2. Checkpoints.
        var checkpoints = export["checkpoints"]!.AsArray().Select(c => c!.AsObject()).ToList();
        foreach (var c in checkpoints)
        {
            var seq = c["seq"]!.GetValue<long>();
            if (seq < 1 || seq > entries.Count || entries[(int)seq - 1]["hash"]!.GetValue<string>() != c["hash"]!.GetValue<string>())
            {
                return LedgerVerification.Invalid($"checkpoint {seq} does not name the entry hash at {seq}");
            }

            var expected = LedgerCheckpoint.Payload(poolId, seq, c["hash"]!.GetValue<string>(), c["time"]!.GetValue<string>());
            var (ok, detail, signedPayload) = CheckJws(c["jws"]!.GetValue<string>(), keys);
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
        var policies = export["policies"]!.AsArray().ToDictionary(p => p!["id"]!.GetValue<string>(), p => p!.AsObject(), StringComparer.Ordinal);
        var devices = export["devices"]!.AsArray().ToDictionary(d => d!["id"]!.GetValue<string>(), d => d!.AsObject(), StringComparer.Ordinal);
        var evidence = export["evidence"]!.AsArray().ToDictionary(
            e => (e!["device"]!.GetValue<string>(), e["seq"]!.GetValue<long>()), e => Base64Url.Decode(e!["cose"]!.GetValue<string>()));
        var opened = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        var approved = new HashSet<string>(StringComparer.Ordinal);
        var paid = new HashSet<string>(StringComparer.Ordinal);
        var reevaluated = 0;
        foreach (var e in entries)
        {
            var body = e["body"]!.AsObject();
            switch (e["kind"]!.GetValue<string>())
            {
                case LedgerEntry.ClaimOpened:
                    opened[body["claim"]!.GetValue<string>()] = body;
                    break;
                case LedgerEntry.Decision when body["decision"]!.GetValue<string>() == "approved":
                    approved.Add(body["claim"]!.GetValue<string>());
                    break;
                case LedgerEntry.Payout:
                    var claimId = body["claim"]!.GetValue<string>();
                    if (!paid.Add(claimId))
                    {
                        return LedgerVerification.Invalid($"claim {claimId} is paid twice");
                    }

                    if (!opened.TryGetValue(claimId, out var claim) || !approved.Contains(claimId))
                    {
                        return LedgerVerification.Invalid($"payout for {claimId} without an opened and approved claim before it");
                    }

                    var problem = CheckPayout(body, claim, poolId, currency, keys, policies, devices, evidence);
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

    private static string? CheckPayout(JsonObject body, JsonObject claim, string poolId, string currency, Dictionary<string, RsaPublicKey> keys,
        Dictionary<string, JsonObject> policies, Dictionary<string, JsonObject> devices, Dictionary<(string, long), byte[]> evidence)
    {
        var jws = body["jws"]!.GetValue<string>();
        var (ok, detail, payload) = CheckJws(jws, keys);
        if (!ok)
        {
            return detail;
        }

        var instruction = JsonNode.Parse(payload!)!.AsObject();
        if (CanonicalJson.SerializeToString(instruction) != Encoding.UTF8.GetString(payload!))
        {
            return "the signed instruction is not canonical JSON";
        }

        var claimId = claim["claim"]!.GetValue<string>();
        var policy = policies.GetValueOrDefault(claim["policy"]!.GetValue<string>());
        if (policy is null)
        {
            return "its policy is not in the export";
        }

        var ruleText = policy["rule"]!.GetValue<string>();
        var ruleHash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ruleText)));
        var claimEvidence = claim["evidence"]!.AsArray().Select(x => (Seq: x!["seq"]!.GetValue<long>(), Hash: x["sha256"]!.GetValue<string>())).ToList();
        if (instruction["claim"]?.GetValue<string>() != claimId
            || instruction["pool"]?.GetValue<string>() != poolId
            || instruction["member"]?.GetValue<string>() != claim["member"]!.GetValue<string>()
            || instruction["amount"]?.GetValue<long>() != claim["amount"]!.GetValue<long>()
            || instruction["amount"]?.GetValue<long>() != body["amount"]!.GetValue<long>()
            || instruction["currency"]?.GetValue<string>() != currency
            || instruction["rule_hash"]?.GetValue<string>() != ruleHash
            || policy["rule_hash"]!.GetValue<string>() != ruleHash
            || !instruction["evidence"]!.AsArray().Select(x => x!.GetValue<string>()).SequenceEqual(claimEvidence.Select(x => x.Hash)))
        {
            return "the signed instruction does not match the claim, its policy or the rule hash";
        }

        // Recompute the trigger: verify each COSE record under its device key, then run the rule.
        var deviceId = claim["device"]!.GetValue<string>();
        if (!devices.TryGetValue(deviceId, out var device))
        {
            return $"device {deviceId} is not in the export";
        }

        using var key = ECDsa.Create();
        key.ImportFromPem(device["public_key"]!.GetValue<string>());
        var facts = new List<EvidenceFacts>();
        var listed = claimEvidence.ToDictionary(x => x.Seq, x => x.Hash);

        // As the service does: a record whose previous hash is not its predecessor's hash is a chain
        // break and is not evaluated (checked only where the predecessor is present).
        var lastHash = evidence.TryGetValue((deviceId, claimEvidence[0].Seq - 1), out var before) ? EvidenceRecord.Hash(before) : null;
        for (var seq = claimEvidence[0].Seq; seq <= claimEvidence[^1].Seq; seq++)
        {
            if (!evidence.TryGetValue((deviceId, seq), out var cose))
            {
                if (listed.ContainsKey(seq))
                {
                    return $"evidence {deviceId}#{seq} is missing from the export";
                }

                lastHash = null;
                continue; // a gap the service recorded and moved past
            }

            var verification = EvidenceVerifier.Verify(cose, id => id == deviceId ? key : null);
            if (!verification.IsValid || verification.Record!.Sequence != seq)
            {
                return $"evidence {deviceId}#{seq} does not verify ({verification.Reason}: {verification.Detail})";
            }

            if (listed.TryGetValue(seq, out var hash) && Convert.ToHexStringLower(verification.Hash) != hash)
            {
                return $"evidence {deviceId}#{seq} hash differs from the claim";
            }

            var chained = lastHash is null || CryptographicOperations.FixedTimeEquals(verification.Record.PreviousHash.Span, lastHash);
            lastHash = verification.Hash;
            if (!chained)
            {
                if (listed.ContainsKey(seq))
                {
                    return $"evidence {deviceId}#{seq} breaks the device's hash chain but is listed in the claim";
                }

                continue;
            }

            facts.Add(new EvidenceFacts(deviceId, seq, verification.Hash, verification.Record.Readings));
        }

        if (!TriggerRule.TryParse(ruleText, out var rule, out var reason))
        {
            return "the policy rule does not parse: " + reason;
        }

        var context = RuleContextJson.Read(policy["context"]!.AsObject());
        var firings = TriggerEvaluator.Evaluate(rule!, context, facts);
        if (firings.Count == 0 || !firings[0].Records.Select(r => r.Sequence).SequenceEqual(claimEvidence.Select(x => x.Seq)))
        {
            return $"re-evaluating '{rule!.Text}' over the claim's evidence does not fire";
        }

        return null;
    }

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
