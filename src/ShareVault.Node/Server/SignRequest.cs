using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Hardware;

namespace ShareVault.Node.Server;

/// <summary>A <c>POST /v1/sign</c> body, parsed; every field is the coordinator's claim, checked by the guard and the node.</summary>
internal sealed record SignRequest(string Key, string Label, KeyScheme Scheme, string Kid, byte[] SigningInput, IReadOnlyList<RsaPublicKey> Quorum, JsonObject? Justification, JsonArray? Ledger)
{
    public static (SignRequest? Request, string? Error) TryParse(JsonObject? body)
    {
        if (body is null)
        {
            return (null, "the body is not a JSON object");
        }

        var key = NodeWire.TryString(body["key"]);
        var label = NodeWire.TryString(body["label"]);
        var kid = NodeWire.TryString(body["kid"]);
        var input = NodeWire.TryBytes(body["signing_input"]);
        if (key is null || label is null || kid is null || input is null)
        {
            return (null, "key, label, kid and signing_input (base64url) are required");
        }

        try
        {
            ShareVault.Evidence.Identifier.Validate(label, "Key label", "label");
        }
        catch (ArgumentException e)
        {
            return (null, e.Message);
        }

        if (!KeySchemeText.TryParse(NodeWire.TryString(body["scheme"]), out var scheme))
        {
            return (null, "scheme must be product-rsa or shoup-rsa");
        }

        var quorum = new List<RsaPublicKey>();
        if (scheme == KeyScheme.ProductRsa)
        {
            if (body["quorum"] is not JsonArray members || members.Count is < 1 or > ProductRsaCeremonyLimit)
            {
                return (null, "a product-RSA request names its quorum's member keys");
            }

            foreach (var member in members)
            {
                if (NodeWire.TryKey(member) is not { } k)
                {
                    return (null, "a quorum member key is not {n, e}");
                }

                quorum.Add(k);
            }
        }

        if (body["justification"] is { } j && j is not JsonObject)
        {
            return (null, "justification must be a JSON object");
        }

        if (body["ledger"] is { } l && l is not JsonArray)
        {
            return (null, "ledger must be a JSON array");
        }

        return (new SignRequest(key, label, scheme, kid, input, quorum, body["justification"]?.DeepClone().AsObject(), body["ledger"]?.DeepClone().AsArray()), null);
    }

    private const int ProductRsaCeremonyLimit = Custody.Threshold.ProductRsa.ProductRsaCeremony.MaxCustodians;

    /// <summary>What the audit log keeps of the request: who and what, and a hash of the signed bytes, never the payload.</summary>
    public JsonObject Summary()
    {
        var payload = PayloadOf(SigningInput);
        return new JsonObject
        {
            ["key"] = Key,
            ["kid"] = Kid,
            ["purpose"] = NodeWire.TryString(Justification?["purpose"]),
            ["pool"] = NodeWire.TryString(Justification?["pool"]) ?? NodeWire.TryString(payload?["pool"]),
            ["claim"] = NodeWire.TryString(payload?["claim"]) ?? NodeWire.TryString(Justification?["claim"]),
            ["signing_input_sha256"] = Convert.ToHexStringLower(SHA256.HashData(SigningInput)),
        };
    }

    private static JsonObject? PayloadOf(byte[] signingInput)
    {
        try
        {
            var text = Encoding.ASCII.GetString(signingInput);
            var dot = text.IndexOf('.', StringComparison.Ordinal);
            return dot < 0 ? null : JsonNode.Parse(Base64Url.Decode(text[(dot + 1)..])) as JsonObject;
        }
        catch (Exception e) when (e is FormatException or System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
