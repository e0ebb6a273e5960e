using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;

namespace ShareVault.Service.Chain;

/// <summary>
/// Where a pool's treasury lives (DATA_DIR/chain/POOL.json, written by <c>sharevault chain deploy</c>):
/// chain id, treasury and token addresses, and how many token units make one minor unit of the
/// pool's currency (10^(token decimals − 2) for a 2-decimal currency). Public facts only.
/// </summary>
public sealed record ChainConfig(string Pool, long ChainId, string Treasury, string Token, BigInteger UnitsPerMinorUnit, string? RpcUrl)
{
    /// <summary>CAIP-2 chain reference as ledger entries write it.</summary>
    public string Caip2 => $"eip155:{ChainId.ToString(CultureInfo.InvariantCulture)}";

    public BigInteger ToTokenUnits(long minorUnits) => minorUnits * UnitsPerMinorUnit;

    public static string PathFor(string dataDir, string pool) => Path.Combine(dataDir, "chain", pool + ".json");

    public JsonObject ToJson() => new()
    {
        ["pool"] = Pool,
        ["chain_id"] = ChainId,
        ["treasury"] = Treasury,
        ["token"] = Token,
        ["units_per_minor_unit"] = UnitsPerMinorUnit.ToString(CultureInfo.InvariantCulture),
        ["rpc"] = RpcUrl,
    };

    public void Save(string dataDir)
    {
        var path = PathFor(dataDir, Pool);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The pool's treasury, or null when none was deployed from this data folder.</summary>
    public static ChainConfig? Load(string dataDir, string pool)
    {
        var path = PathFor(dataDir, pool);
        if (!File.Exists(path))
        {
            return null;
        }

        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        return new ChainConfig(
            json["pool"]!.GetValue<string>(),
            json["chain_id"]!.GetValue<long>(),
            json["treasury"]!.GetValue<string>(),
            json["token"]!.GetValue<string>(),
            BigInteger.Parse(json["units_per_minor_unit"]!.GetValue<string>(), CultureInfo.InvariantCulture),
            json["rpc"]?.GetValue<string>());
    }

    /// <summary>Every pool with a treasury in the data folder.</summary>
    public static IReadOnlyList<ChainConfig> All(string dataDir)
    {
        var folder = Path.Combine(dataDir, "chain");
        return Directory.Exists(folder)
            ? [.. Directory.GetFiles(folder, "*.json").Order(StringComparer.Ordinal).Select(f => Load(dataDir, Path.GetFileNameWithoutExtension(f))!)]
            : [];
    }
}
