using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Evidence;
using ShareVault.TestSupport;

namespace ShareVault.Benchmarks;

/// <summary>
/// Ingest as deployed for scale-out: <paramref name="Instances"/> real <c>sharevault serve --broker
/// mqtt://… --db postgresql</c> processes behind one mosquitto (a fresh one per round, plain TCP on
/// loopback, anonymous: the benchmark measures throughput, not the ACL) splitting the stream with the
/// MQTT 5 shared subscription, over one PostgreSQL database. One MQTT 5 client per device publishes
/// its records (QoS 1, in sequence order) and counts its receipts; the clock runs from the first
/// publish to the last receipt. Process start-up is outside the clock.
/// </summary>
internal static class ScaleOutRound
{
    private static readonly TimeSpan Ready = TimeSpan.FromSeconds(120);

    /// <summary>Runs one round; returns the records/s and the zero-loss verdict checked in the database.</summary>
    public static async Task<(double Rate, bool Lossless, string Verdict)> RunAsync(
        int instances, string database, IReadOnlyList<(string Id, System.Security.Cryptography.ECDsa Key)> devices, IReadOnlyList<List<byte[]>> records,
        Func<string, (long Rows, long Distinct)> count, Func<Func<int>, int, Task> wait)
    {
        var dir = Directory.CreateTempSubdirectory("sv-scale-bench-").FullName;
        var port = ShareVault.Hardware.LoopbackPorts.Reserve();
        await File.WriteAllTextAsync(Path.Combine(dir, "mosquitto.conf"), $"""
            listener {port} 127.0.0.1
            allow_anonymous true
            set_tcp_nodelay true
            max_queued_messages 1000000
            max_inflight_messages 2000
            persistence false
            log_dest none
            """);
        var services = new List<ChildProcess>();
        var clients = new List<DevicePublisher>();
        using var mosquitto = ChildProcess.Start("mosquitto", "mosquitto", ["-c", Path.Combine(dir, "mosquitto.conf")]);
        try
        {
            await WaitForPortAsync(port);
            for (var i = 0; i < instances; i++)
            {
                var data = Directory.CreateDirectory(Path.Combine(dir, $"serve-{i}")).FullName;
                services.Add(ChildProcess.Start($"serve #{i + 1}", "dotnet",
                    [Path.Combine(AppContext.BaseDirectory, "sharevault.dll"), "serve", "--data-dir", data, "--db", database,
                     "--broker", $"mqtt://127.0.0.1:{port}", "--http-port", ShareVault.Hardware.LoopbackPorts.Reserve().ToString(CultureInfo.InvariantCulture),
                     "--checkpoint-every", "100000000", "--checkpoint-minutes", "1000000"]));
            }

            await Task.WhenAll(services.Select(s => s.WaitForLineAsync(l => l.TrimStart().StartsWith("HTTP API ", StringComparison.Ordinal), Ready, "HTTP API line (service ready)")));

            var receipts = new ConcurrentQueue<EvidenceReceipt>();
            clients.AddRange(await DevicePublisher.ConnectAllAsync(devices, port, receipts, withProof: false));

            // Each new process JITs and fills its caches first; a running service is past that, so the first
            // tenth of every device's records goes through before the clock starts.
            var expected = records.Sum(r => r.Count);
            var warm = Math.Max(1, records.Min(r => r.Count) / 10);
            await PublishAsync(clients, records, 0, warm);
            await wait(() => receipts.Count, warm * records.Count);
            var clock = Stopwatch.StartNew();
            var publishing = PublishAsync(clients, records, warm, int.MaxValue);
            await wait(() => receipts.Count, expected);
            var elapsed = clock.Elapsed;
            await publishing;

            var (rows, distinct) = count(database);
            var (lossless, verdict) = DevicePublisher.ZeroLoss(rows, distinct, receipts, expected);
            return ((expected - (warm * records.Count)) / elapsed.TotalSeconds, lossless, verdict);
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
            foreach (var service in services)
            {
                service.Signal(ChildProcess.SigTerm);
            }

            foreach (var service in services)
            {
                try
                {
                    await service.WaitForExitAsync(TimeSpan.FromSeconds(30));
                }
                catch (TimeoutException)
                {
                }

                service.Dispose();
            }

            mosquitto.Kill();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Each device publishes its records [<paramref name="from"/>, <paramref name="to"/>) in order, QoS 1, all devices at once (<see cref="DevicePublisher"/>).</summary>
    private static Task PublishAsync(List<DevicePublisher> clients, IReadOnlyList<List<byte[]>> records, int from, int to) =>
        Task.WhenAll(clients.Select((client, d) => Task.Run(() => client.PublishAsync(records[d].Take(to).Skip(from)))));

    private static async Task WaitForPortAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }
}
