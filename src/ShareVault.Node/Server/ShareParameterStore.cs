using System.Text.Json.Nodes;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;

namespace ShareVault.Node.Server;

/// <summary>
/// The public parameters of each Shoup share this node holds (<c>DATA_DIR/shares/LABEL.json</c>),
/// pinned at import, so the node computes z = x^(2Δ) mod N itself and never takes N or Δ from a
/// signing request. Written atomically and fsynced.
/// </summary>
internal sealed class ShareParameterStore(string dataDir)
{
    private string Folder => Path.Combine(dataDir, "shares");

    public void Save(string label, ShoupShareParameters parameters)
    {
        DurableFile.CreateDirectory(Folder);
        var json = new JsonObject
        {
            ["modulus"] = NodeWire.Big(parameters.Modulus),
            ["exponent"] = NodeWire.Big(parameters.Exponent),
            ["players"] = parameters.Players,
            ["verification_base"] = NodeWire.Big(parameters.VerificationBase),
        };
        DurableFile.WriteAtomic(PathOf(label), System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()));
    }

    public ShoupShareParameters? Load(string label)
    {
        var path = PathOf(label);
        if (!File.Exists(path))
        {
            return null;
        }

        var json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject;
        return json is not null
            && NodeWire.TryInteger(json["modulus"]) is { } n
            && NodeWire.TryInteger(json["exponent"]) is { } e
            && NodeWire.TryLong(json["players"]) is { } players
            && NodeWire.TryInteger(json["verification_base"]) is { } v
            ? new ShoupShareParameters(n, e, (int)players, v)
            : throw new InvalidDataException($"Share parameters {path} are damaged");
    }

    public void Delete(string label)
    {
        var path = PathOf(label);
        if (File.Exists(path))
        {
            File.Delete(path);
            DurableFile.SyncDirectory(Folder);
        }
    }

    private string PathOf(string label)
    {
        ShareVault.Evidence.Identifier.Validate(label, "Key label", nameof(label));
        return Path.Combine(Folder, label + ".json");
    }
}
