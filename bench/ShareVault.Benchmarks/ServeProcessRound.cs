using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Ingest over MQTT as a single-machine deployment runs it: one real <c>sharevault serve</c> process
/// with its embedded broker on a SQLite or PostgreSQL database, the devices (<see cref="DevicePublisher"/>, one MQTT 5
/// client each, logged in with their device proofs) in the benchmark's process. Both processes share the
/// same cores, so besides the rate the round reports how much CPU each spent per record (utime + stime
/// from <c>/proc</c>): the service's share is what a deployment's server pays, the benchmark's is what
/// its devices would pay on their own hardware. The clock and the CPU counters run from the first
/// publish to the last receipt; start-up and a warm-up half of every device's records are outside them.
/// </summary>
internal static class ServeProcessRound
{
    private static readonly TimeSpan Ready = TimeSpan.FromSeconds(120);

    /// <summary>The round's rate, zero-loss verdict, and CPU per record (µs) of the service and of the devices.</summary>
    public sealed record Result(double Rate, bool Lossless, string Verdict, double ServiceMicrosPerRecord, double DevicesMicrosPerRecord)
    {
        /// <summary>The rate the service's own CPU per record would allow if it had every core of this machine to itself: a ceiling, not a measurement.</summary>
        public double ServiceCeiling => Environment.ProcessorCount * 1e6 / ServiceMicrosPerRecord;
    }

    /// <param name="database">A PostgreSQL connection string, or null for a SQLite file in a fresh folder.</param>
    public static async Task<Result> RunAsync(
        string? database, IReadOnlyList<(string Id, System.Security.Cryptography.ECDsa Key)> devices, IReadOnlyList<List<byte[]>> records,
        Func<ClaimsDatabase, Task> enroll, Func<Func<int>, int, Task> wait)
    {
        var dir = Directory.CreateTempSubdirectory("sv-serve-bench-").FullName;
        database ??= Path.Combine(dir, "claims.db");
        using (var db = ClaimsDatabase.Open(database))
        {
            await enroll(db);
        }

        var port = ShareVault.Hardware.LoopbackPorts.Reserve();
        var clients = new List<DevicePublisher>();
        using var service = ChildProcess.Start("serve", "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "sharevault.dll"), "serve", "--data-dir", dir, "--db", database,
             "--mqtt-port", port.ToString(CultureInfo.InvariantCulture), "--mqtt-tls-port", "0",
             "--http-port", ShareVault.Hardware.LoopbackPorts.Reserve().ToString(CultureInfo.InvariantCulture),
             "--checkpoint-every", "100000000", "--checkpoint-minutes", "1000000"]);
        try
        {
            await service.WaitForLineAsync(l => l.TrimStart().StartsWith("HTTP API ", StringComparison.Ordinal), Ready, "HTTP API line (service ready)");
            var receipts = new ConcurrentQueue<EvidenceReceipt>();
            clients.AddRange(await DevicePublisher.ConnectAllAsync(devices, port, receipts, withProof: true));

            // A fresh process compiles its hot paths twice (tiered JIT) during its first tens of thousands of
            // records; a running service is past that. So the first half of every device's records goes
            // through, then a pause lets the background compiler finish, and the second half is measured.
            var expected = records.Sum(r => r.Count);
            var warm = Math.Max(1, records.Min(r => r.Count) / 2);
            await Task.WhenAll(clients.Select((client, d) => Task.Run(() => client.PublishAsync(records[d].Take(warm)))));
            await wait(() => receipts.Count, warm * records.Count);
            await Task.Delay(TimeSpan.FromSeconds(2));

            var (serviceBefore, selfBefore) = (ProcessCpu(service.Pid), Process.GetCurrentProcess().TotalProcessorTime);
            var clock = Stopwatch.StartNew();
            var publishing = Task.WhenAll(clients.Select((client, d) => Task.Run(() => client.PublishAsync(records[d].Skip(warm)))));
            await wait(() => receipts.Count, expected);
            var elapsed = clock.Elapsed;
            var (serviceAfter, selfAfter) = (ProcessCpu(service.Pid), Process.GetCurrentProcess().TotalProcessorTime);
            await publishing;

            var measured = expected - (warm * records.Count);
            long rows, distinct;
            using (var db = ClaimsDatabase.Open(database))
            using (var reader = db.OpenReader())
            {
                rows = Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(*) FROM evidence"), CultureInfo.InvariantCulture);
                distinct = Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(DISTINCT hash) FROM evidence"), CultureInfo.InvariantCulture);
            }

            var (lossless, verdict) = DevicePublisher.ZeroLoss(rows, distinct, receipts, expected);
            return new Result(measured / elapsed.TotalSeconds, lossless, verdict,
                (serviceAfter - serviceBefore).TotalMicroseconds / measured, (selfAfter - selfBefore).TotalMicroseconds / measured);
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
            service.Signal(ChildProcess.SigTerm);
            try
            {
                await service.WaitForExitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                service.Kill();
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>User + system CPU time of a process so far (<c>/proc/PID/stat</c> fields 14 and 15, in clock ticks of 1/100 s).</summary>
    private static TimeSpan ProcessCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromMilliseconds(ticks * 10);
    }
}
