using System.Text.Json.Nodes;

namespace ShareVault.Service.Chain;

/// <summary>
/// The compiled contracts (contracts/PoolTreasury.json, embedded): ABI and creation bytecode of
/// PoolTreasury and TestStablecoin, produced by the pinned solc-js (contracts/build.js).
/// </summary>
public static class TreasuryArtefact
{
    private static readonly Lazy<JsonObject> Json = new(() =>
    {
        using var stream = typeof(TreasuryArtefact).Assembly.GetManifestResourceStream("ShareVault.Service.Chain.PoolTreasury.json")
            ?? throw new InvalidOperationException("PoolTreasury.json is not embedded");
        return JsonNode.Parse(stream)!.AsObject();
    });

    public static string Compiler => Json.Value["compiler"]!.GetValue<string>();

    public static string TreasuryBytecode => Contract("PoolTreasury")["bytecode"]!.GetValue<string>();

    public static string StablecoinBytecode => Contract("TestStablecoin")["bytecode"]!.GetValue<string>();

    public static JsonArray Abi(string contract) => Contract(contract)["abi"]!.AsArray();

    private static JsonObject Contract(string name) => Json.Value["contracts"]![name]!.AsObject();
}
