using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware.Custodians;
using ShareVault.Service.Chain;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// PoolTreasury on anvil: gas per payout and per checkpoint anchor for each scheme and key size,
/// under the default (current mainnet) and Prague gas schedules, and wall time from a payout's
/// threshold signature to its receipt (anvil mines each transaction at once; a public chain adds
/// its block time). Keys from the project's ceremonies on SoftHSM; Shoup from the test safe primes.
/// </summary>
internal sealed class ChainBenchmark : IBenchmark
{
    public string Name => "chain";

    public string Description => "PoolTreasury gas per payout/anchor per scheme and key size; signed->receipt wall time (anvil) [--payouts N]";

    public async Task RunAsync(string[] args)
    {
        var payouts = args.Length >= 2 && args[0] == "--payouts" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 10;
        var dataDir = Path.Combine(Path.GetTempPath(), "sv-chain-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dataDir);
        using var stores = new ShareStoreRegistry(dataDir);
        var catalog = new KeyCatalog(dataDir);
        var signer = new ThresholdSigner(stores);
        var hsm = SoftHsm.Shared;
        var suffix = Guid.NewGuid().ToString("N")[..6];
        Console.WriteLine($"chain benchmark: anvil {AnvilProcess.FindBinary()}, {TreasuryArtefact.Compiler}, {payouts} payouts per key and schedule, {Environment.ProcessorCount} cores");

        var keys = new List<(string Label, KeyRecord Key)>();
        foreach (var bits in new[] { 2048, 3072 })
        {
            var name = $"bench-prsa{bits}-{suffix}";
            keys.Add(($"product RSA 2-of-3, {bits}-bit members", new ProductRsaCeremony(stores, catalog, TimeProvider.System)
                .Create(name, 2, bits, [hsm.Uri("custody-a", name), hsm.Uri("custody-b", name), hsm.Uri("custody-c", name)])));
        }

        foreach (var bits in new[] { 2048, 3072 })
        {
            var name = $"bench-shoup{bits}-{suffix}";
            keys.Add(($"Shoup 2-of-3, {bits}-bit", new ShoupCeremony(stores.Get, catalog, TimeProvider.System, new VectorPrimes())
                .Create(name, 2, bits, [hsm.Uri("spare-1", name), hsm.Uri("spare-2", name), hsm.Uri("spare-3", name)])));
        }

        Console.WriteLine($"{"schedule",-9} {"key",-36} {"EM bytes",8} {"payout gas",11} {"anchor gas",11} {"signed->receipt ms (median, p90)",34}");
        foreach (var hardfork in new string?[] { null, "prague" })
        {
            using var anvil = AnvilProcess.Start(hardfork);
            foreach (var (label, key) in keys)
            {
                await MeasureAsync(anvil, hardfork ?? "default", label, key, signer, payouts);
            }
        }

        try
        {
            Directory.Delete(dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task MeasureAsync(AnvilProcess anvil, string schedule, string label, KeyRecord key, ThresholdSigner signer, int payouts)
    {
        var chainKeys = ChainPoolKey.FromRecord(key);
        var client = new TreasuryClient(anvil.RpcUrl, AnvilProcess.DevAccountKey, AnvilProcess.DevChainId, "");
        var token = await client.DeployStablecoinAsync(default);
        await client.DeployAsync(1_000_000_000, chainKeys, default);
        await client.MintAsync(token, client.Address, 1_000_000_000_000, default);
        var member = new Nethereum.Web3.Accounts.Account(AnvilProcess.MemberAccountKeys[0]).Address;
        await client.MintAsync(token, member, 1, default); // an existing holder, as most members are

        var gas = new List<long>();
        var wall = new List<double>();
        for (var i = 0; i < payouts; i++)
        {
            var claim = TreasuryMessages.ClaimHash($"bench-{Guid.NewGuid():N}");
            var message = TreasuryMessages.Payout(client.ChainId, client.Address, claim, token, member, 25_000_000);
            var (jws, _) = await signer.SignJwsAsync(key, message, null, default);
            var clock = Stopwatch.StartNew();
            var authorisation = ChainAuthorisation.FromJws(jws, message, chainKeys)!;
            var tx = await client.PayoutAsync(claim, token, member, 25_000_000, authorisation.ToParam(), default);
            wall.Add(clock.Elapsed.TotalMilliseconds);
            if (!tx.Succeeded)
            {
                throw new InvalidOperationException($"{label}: payout failed: {tx}");
            }

            gas.Add(tx.GasUsed);
        }

        var payload = LedgerCheckpoint.Payload("bench", 1, Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(Environment.TickCount64))), LedgerEntry.FormatTime(DateTimeOffset.UtcNow));
        var (checkpointJws, _) = await signer.SignJwsAsync(key, payload, null, default);
        var anchor = await client.AnchorAsync(payload, ChainAuthorisation.FromJws(checkpointJws, payload, chainKeys)!.ToParam(), default);
        wall.Sort();
        gas.Sort();
        Console.WriteLine($"{schedule,-9} {label,-36} {chainKeys[0].EmLength,8} {gas[gas.Count / 2],11} {anchor.GasUsed,11} {wall[wall.Count / 2],22:F1} {wall[(int)(wall.Count * 0.9)],10:F1}");
    }

    /// <summary>The public test safe primes (tests/ShareVault.Custody.Tests/Vectors), never a real key.</summary>
    private sealed class VectorPrimes : ISafePrimeSource
    {
        public (BigInteger P, BigInteger Q) Generate(int modulusBits, IProgress<string>? progress, CancellationToken cancellationToken) =>
            SafePrimeVectors.For(modulusBits);
    }
}
