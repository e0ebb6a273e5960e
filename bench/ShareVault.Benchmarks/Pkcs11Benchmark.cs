using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using Net.Pkcs11Interop.Common;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Hardware.Pkcs11;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Issue 2: ShareVault's partial rate through its PKCS#11 store against a bare C_Sign(CKM_RSA_X_509)
/// loop on the same token and OpenSSL's own RSA-2048 rate; then full 2-of-3 product-RSA signature
/// latency in process with warm sessions, next to the latency of one partial.
/// </summary>
internal sealed partial class Pkcs11Benchmark : IBenchmark
{
    public string Name => "pkcs11";

    public string Description => "product RSA on SoftHSM: partial rate vs bare C_Sign vs openssl speed; 2-of-3 latency";

    public async Task RunAsync(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3.0;
        var rounds = 3;
        var hsm = SoftHsm.Shared;
        var dataDir = Directory.CreateTempSubdirectory("sv-bench-").FullName;
        using var stores = new ShareStoreRegistry(dataDir);
        var key = new ProductRsaCeremony(stores, new KeyCatalog(dataDir), TimeProvider.System)
            .Create("bench", 2, 2048, [hsm.Uri("custody-a"), hsm.Uri("custody-b"), hsm.Uri("custody-c")]);
        var custodian = key.Custodian("custody-a");
        var store = (Pkcs11ShareStore)stores.Get(CustodianAddress.Parse(custodian.Uri, key.Name));
        var publicKey = ProductRsaKey.MemberKey(custodian);
        var input = BigEndian.ToBytes(BigInteger.Parse("31415926535897932384626433832795028841971", CultureInfo.InvariantCulture), publicKey.ByteLength);

        Console.WriteLine($"pkcs11 benchmark: SoftHSM {hsm.ConfPath}, RSA-2048 member keys, {rounds} rounds of {seconds:0.#} s each, 1 thread");
        var storeRates = new List<double>();
        var bareRates = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            storeRates.Add(Stats.Rate(TimeSpan.FromSeconds(seconds), () => store.RsaRawPrivate(key.Name, input)));
            bareRates.Add(BareLoopRate(store, key.Name, input, seconds));
        }

        // Does the module compute two partials at once? Two threads, two tokens, each a bare C_Sign loop.
        var other = (Pkcs11ShareStore)stores.Get(CustodianAddress.Parse(key.Custodian("custody-b").Uri, key.Name));
        var twoThreads = new double[2];
        Parallel.For(0, 2, i => twoThreads[i] = BareLoopRate(i == 0 ? store : other, key.Name, input, seconds));
        var openssl = await OpenSslRateAsync(seconds);
        var storeMedian = Stats.Median(storeRates);
        var bareMedian = Stats.Median(bareRates);
        Console.WriteLine($"  ShareVault store partials/s      median {storeMedian,8:0.0}  (rounds: {string.Join(", ", storeRates.Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))})");
        Console.WriteLine($"  bare C_Sign(CKM_RSA_X_509)/s     median {bareMedian,8:0.0}  (rounds: {string.Join(", ", bareRates.Select(r => r.ToString("0.0", CultureInfo.InvariantCulture)))})");
        Console.WriteLine($"  bare C_Sign, 2 threads on 2 tokens      {twoThreads.Sum(),8:0.0}  ({twoThreads.Sum() / bareMedian:0.00}x one thread; 2.00x = the module computes in parallel)");
        Console.WriteLine($"  openssl speed rsa2048 sign/s            {openssl,8:0.0}  (1 process, {seconds:0.#} s)");
        Console.WriteLine($"  store / bare loop                        {storeMedian / bareMedian,8:P1}  (aim >= 90%)");

        var signer = new ThresholdSigner(stores);
        var message = "payout: claim 1, 100 EUR"u8.ToArray();
        var quorum = key.Quorums[0].Kid;
        await signer.SignRawAsync(key, message, quorum, CancellationToken.None);
        // Interleaved, so machine noise falls on both series alike.
        var partial = new List<double>();
        var full = new List<double>();
        for (var i = 0; i < 300; i++)
        {
            partial.AddRange(await Stats.LatenciesAsync(1, () => Task.Run(() => store.RsaRawPrivate(key.Name, input))));
            full.AddRange(await Stats.LatenciesAsync(1, () => signer.SignRawAsync(key, message, quorum, CancellationToken.None)));
        }

        Console.WriteLine($"  one partial latency (ms)          median {Stats.Median(partial),8:0.000}  p95 {Stats.Percentile(partial, 95):0.000}");
        Console.WriteLine($"  2-of-3 signature latency (ms)     median {Stats.Median(full),8:0.000}  p95 {Stats.Percentile(full, 95):0.000}");
        Console.WriteLine($"  2-of-3 / one partial (median)            {Stats.Median(full) / Stats.Median(partial),8:0.00}x  (aim <= 1.3x)");
        Directory.Delete(dataDir, recursive: true);
    }

    /// <summary>The token's own rate: one session, one cached handle, C_Sign in a loop, nothing else.</summary>
    private static double BareLoopRate(Pkcs11ShareStore store, string label, byte[] input, double seconds) => store.WithSession(session =>
    {
        var handle = store.FindObjects(session, CKO.CKO_PRIVATE_KEY, label).Single();
        using var mechanism = store.Module.Factories.MechanismFactory.Create(CKM.CKM_RSA_X_509);
        return Stats.Rate(TimeSpan.FromSeconds(seconds), () => session.Sign(mechanism, handle, input));
    });

    private static async Task<double> OpenSslRateAsync(double seconds)
    {
        var result = await ProcessRunner.RunAsync("openssl", ["speed", "-seconds", ((int)Math.Ceiling(seconds)).ToString(CultureInfo.InvariantCulture), "rsa2048"], TimeSpan.FromMinutes(2));
        // "rsa 2048 bits 0.000634s 0.000018s   1577.6  55066.3" — the first rate column is private operations (sign) per second.
        var match = OpenSslLine().Match(result.StdOut);
        return match.Success ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
    }

    [GeneratedRegex(@"rsa\s+2048 bits\s+\S+\s+\S+\s+([0-9.]+)")]
    private static partial Regex OpenSslLine();
}
