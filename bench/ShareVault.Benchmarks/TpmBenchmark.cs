using System.Globalization;
using System.Numerics;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Product-RSA partials (raw RSA-2048 private operation) on swtpm through the TCG TSS next to the
/// same on a SoftHSM token, measured in one run. Each TPM partial is the full frame the store runs:
/// CreatePrimary (ECC P-256), salted session, Load, RSA_Decrypt, three flushes.
/// </summary>
internal sealed class TpmBenchmark : IBenchmark
{
    public string Name => "tpm";

    public string Description => "TPM (swtpm) vs SoftHSM raw RSA-2048 partials: rate, median and p95 latency [--count N]";

    public Task RunAsync(string[] args)
    {
        var count = args.Length >= 2 && args[0] == "--count" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 200;
        var dataDir = Directory.CreateTempSubdirectory("sv-bench-tpm-").FullName;
        try
        {
            using var swtpm = new Swtpm();
            using var tpm = TpmShareStore.Open(swtpm.Uri("bench-tpm"), dataDir);
            using var hsm = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(SoftHsm.Shared.Uri("spare-1")));
            var label = $"b-{Guid.NewGuid():N}"[..12];
            Console.WriteLine($"generating RSA-2048 in swtpm ({swtpm.Tcti}) and in SoftHSM token spare-1 ...");
            var results = new List<(string Store, double Rate, double Median, double P95)>();
            foreach (var (storeName, store) in new (string, IShareStore)[] { ("swtpm (TSS ESYS)", tpm), ("SoftHSM (PKCS#11)", hsm) })
            {
                var key = store.GenerateRsaKey(label, 2048);
                var input = BigEndian.ToBytes(BigInteger.Parse("123456789123456789123456789", CultureInfo.InvariantCulture), key.ByteLength);
                for (var i = 0; i < 10; i++)
                {
                    store.RsaRawPrivate(label, input); // warm-up
                }

                var latencies = Stats.LatenciesAsync(count, () =>
                {
                    store.RsaRawPrivate(label, input);
                    return Task.CompletedTask;
                }).GetAwaiter().GetResult();
                var rate = Stats.Rate(TimeSpan.FromSeconds(3), () => store.RsaRawPrivate(label, input));
                results.Add((storeName, rate, Stats.Median(latencies), Stats.Percentile(latencies, 95)));
                store.DeleteKey(label);
            }

            Console.WriteLine();
            Console.WriteLine($"raw RSA-2048 partials, {count} timed + 3 s rate, one caller:");
            Console.WriteLine($"{"store",-20} {"partials/s",11} {"median ms",10} {"p95 ms",9}");
            foreach (var r in results)
            {
                Console.WriteLine($"{r.Store,-20} {r.Rate,11:0.0} {r.Median,10:0.00} {r.P95,9:0.00}");
            }

            Console.WriteLine($"SoftHSM / swtpm rate: {results[1].Rate / results[0].Rate:0.0}x");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }

        return Task.CompletedTask;
    }
}
