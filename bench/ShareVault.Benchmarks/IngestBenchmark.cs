using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;
using ShareVault.Evidence;
using ShareVault.Service;

namespace ShareVault.Benchmarks;

/// <summary>
/// Evidence records per second verified (COSE_Sign1 ES256 under each device's enrolled key), stored
/// durably (SQLite WAL, synchronous=FULL), evaluated and receipted by one service instance, with a
/// fleet of simulated devices; next to the bare ECDSA P-256 verify rate measured in the same rounds on
/// the same cores. Every round measures, in turn: bare verify on one core and on all cores, full
/// evidence verification (COSE + CBOR + ES256) on all cores, the in-process ingest pipeline, and —
/// unless <c>--no-mqtt</c> — end to end through the embedded MQTT broker (one MQTT 5 client per
/// device, logged in with its device proof, publishing QoS 1 and counting receipts). Medians over
/// the rounds are printed with the ingest / bare-verify ratio, and each round checks that every
/// record was stored exactly once and receipted. With <c>--postgres</c> every in-process and MQTT
/// round runs a second time against PostgreSQL (a fresh database per round), printed in the same
/// table, so SQLite, PostgreSQL and bare verify are compared under the same load. With <c>--serve</c>
/// (implies <c>--postgres</c>) every round also runs 1, 2 and 3 real <c>sharevault serve</c>
/// processes behind mosquitto with a shared subscription (<see cref="ScaleOutRound"/>). Nothing here
/// fails on a slow machine; it prints.
/// </summary>
internal sealed class IngestBenchmark : IBenchmark
{
    /// <summary>A round that makes no progress for this long is reported with its loss instead of waited for.</summary>
    private static readonly TimeSpan Stall = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan VerifyWindow = TimeSpan.FromSeconds(1);

    /// <summary>Uncounted full MQTT rounds before the first measured one (see the warm-up in <see cref="RunAsync"/>).</summary>
    private const int WarmUpMqttRounds = 3;

    /// <summary>With <c>--serve</c>: rounds with 1, 2, … this many serve processes.</summary>
    private const int MaxInstances = 3;

    /// <summary>Measures throughput, not the per-device rate limiter.</summary>
    private static readonly IngestOptions Unlimited = new() { RatePerSecond = 1e9, Burst = 1e9 };

    /// <summary>Options followed by a value (<c>--rounds 3</c>).</summary>
    private static readonly string[] ValueOptions = ["--devices", "--records", "--rounds", "--agent-seconds"];

    public string Name => "ingest";

    public string Description => "records/s verified + stored (FULL) + receipted, in process and over MQTT, vs bare ECDSA P-256 verify [devices] [records-per-device] [rounds] [--no-mqtt] "
        + "[--postgres | --postgres=CONNSTRING: also on PostgreSQL, a throwaway server (initdb) unless CONNSTRING names one whose user may CREATE DATABASE] "
        + "[--serve: also 1, 2 and 3 real 'sharevault serve' processes behind mosquitto (shared subscription) on PostgreSQL] "
        + "[--agent: also the agent's PKCS#11 sign alone and sign+enqueue (group commit) each round] [--devices N --records N --rounds N --agent-seconds S]";

    public async Task RunAsync(string[] args)
    {
        var numbers = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (i == 0 || !ValueOptions.Contains(args[i - 1]))).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).ToArray();
        var devices = numbers.Length > 0 ? numbers[0] : 200;
        var perDevice = numbers.Length > 1 ? numbers[1] : 150;
        var rounds = numbers.Length > 2 ? numbers[2] : 5;
        var mqtt = !args.Contains("--no-mqtt");
        var serve = args.Contains("--serve");
        var agent = args.Contains("--agent");
        (devices, perDevice, rounds) = (IntOption(args, "--devices", devices), IntOption(args, "--records", perDevice), IntOption(args, "--rounds", rounds));
        var agentWindow = TimeSpan.FromSeconds(IntOption(args, "--agent-seconds", 1));
        var total = devices * perDevice;
        using var postgres = PostgresDatabases.FromArguments(serve && !args.Any(a => a.StartsWith("--postgres", StringComparison.Ordinal)) ? [.. args, "--postgres"] : args);

        Console.WriteLine($"fleet: {devices} devices x {perDevice} records = {total} records per round, {rounds} rounds, {Environment.ProcessorCount} cores, load average {LoadAverage()}");
        if (postgres is not null)
        {
            Console.WriteLine($"PostgreSQL: {postgres.Description}");
        }
        var signing = Stopwatch.StartNew();
        var fleet = Fleet.Create(devices, perDevice);
        Console.WriteLine($"signed the fleet's records in {signing.Elapsed.TotalSeconds:F1} s ({fleet.Stream.Count} records, {fleet.Stream.Average(m => m.Payload.Length):F0} bytes each on average)");

        using var bareKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var hash = SHA256.HashData("sharevault ingest benchmark"u8);
        var signature = bareKey.SignHash(hash);
        var spki = bareKey.ExportSubjectPublicKeyInfo();

        // Tiered JIT (a method is compiled again, with profile-guided optimisation, only after it has run a
        // while), the thread pool and MQTTnet's buffers need a moment; a running service is past that. In
        // one process, consecutive 30 000-record MQTT rounds went 7 700, 7 000, then 10 100-11 900/s, so
        // one full in-process round and WarmUpMqttRounds full MQTT rounds go first, uncounted.
        var warmUp = fleet.Take(Math.Max(10, perDevice / 5));
        var warmIn = await InProcessRoundAsync(fleet, null);
        var warmMqtt = new List<double>();
        for (var i = 0; mqtt && i < WarmUpMqttRounds; i++)
        {
            warmMqtt.Add((await MqttRoundAsync(fleet, null)).Rate);
        }

        Console.WriteLine($"warm-up, not counted ({fleet.Stream.Count} records each): in-process {warmIn.Rate:F0}/s{(warmMqtt.Count == 0 ? string.Empty : $", over MQTT {string.Join(", ", warmMqtt.Select(r => r.ToString("F0", CultureInfo.InvariantCulture)))}/s")}");
        if (postgres is not null)
        {
            var warmPgIn = await InProcessRoundAsync(warmUp, postgres);
            var warmPgMqtt = mqtt ? await MqttRoundAsync(warmUp, postgres) : null;
            Console.WriteLine($"warm-up on PostgreSQL, not counted: in-process {warmPgIn.Rate:F0}/s{(warmPgMqtt is null ? string.Empty : $", over MQTT {warmPgMqtt.Rate:F0}/s")}");
        }

        var agentRoot = Directory.CreateTempSubdirectory("sv-evidence-agent-").FullName;
        using var hsm = agent ? DeviceAgent.Keys.DeviceKey.Create(ShareVault.TestSupport.SoftHsm.Shared.Uri("device-hsm", $"bench-{Guid.NewGuid():N}"[..14]), allowSoftwareKey: false) : null;
        var agentSign = new List<double>();
        var agentEnqueue = new List<double>();
        var agentFsyncs = new List<double>();
        var bareOne = new List<double>();
        var bareAll = new List<double>();
        var evidenceAll = new List<double>();
        var inProcess = new List<RoundResult>();
        var endToEnd = new List<RoundResult>();
        var pgInProcess = new List<RoundResult>();
        var pgEndToEnd = new List<RoundResult>();
        var scaleOut = Enumerable.Range(0, MaxInstances).Select(_ => new List<(double Rate, bool Lossless, string Verdict)>()).ToArray();
        var serveEmbedded = new List<ServeProcessRound.Result>();
        var serveEmbeddedPg = new List<ServeProcessRound.Result>();
        var pg = postgres is not null;
        Console.WriteLine();
        Console.WriteLine($"{"round",5} {"bare 1 core",12} {"bare all",10} {"evidence all",13} {"in-process",11} {"/bare",6} {(pg ? $"{"pg in-proc",11} {"/bare",6} " : string.Empty)}"
            + $"{"over MQTT",10} {"/bare",6} {(pg ? $"{"pg MQTT",10} {"/bare",6} " : string.Empty)}  zero loss");
        for (var round = 1; round <= rounds; round++)
        {
            bareOne.Add(Stats.Rate(VerifyWindow, () => bareKey.VerifyHash(hash, signature)));
            bareAll.Add(ParallelRate(VerifyWindow, hash, signature, spki));
            evidenceAll.Add(EvidenceVerifyRate(VerifyWindow, fleet));
            if (hsm is not null)
            {
                agentSign.Add(AgentBenchmark.SignRate(hsm.Signer, agentWindow));
                var (rate, fsyncs) = AgentBenchmark.GroupCommitRate(Path.Combine(agentRoot, $"round-{round}"), hsm.Signer, agentWindow);
                agentEnqueue.Add(rate);
                agentFsyncs.Add(fsyncs);
                Console.WriteLine($"{round,5} agent, PKCS#11 (SoftHSM): sign alone {agentSign[^1]:F0}/s, sign+enqueue with group commit {agentEnqueue[^1]:F0}/s ({agentEnqueue[^1] / agentSign[^1]:P0} of signing, {fsyncs:F3} fsyncs per record)");
            }

            inProcess.Add(await InProcessRoundAsync(fleet, null));
            if (postgres is not null)
            {
                pgInProcess.Add(await InProcessRoundAsync(fleet, postgres));
            }

            if (mqtt)
            {
                endToEnd.Add(await MqttRoundAsync(fleet, null));
                if (postgres is not null)
                {
                    pgEndToEnd.Add(await MqttRoundAsync(fleet, postgres));
                }
            }

            if (serve)
            {
                async Task Enroll(ClaimsDatabase db)
                {
                    using var engine = new ClaimsEngine(db, new NoSigner(), TimeProvider.System);
                    await fleet.EnrollAsync(engine);
                }

                serveEmbedded.Add(await ServeProcessRound.RunAsync(null, fleet.Devices, fleet.Records, Enroll, WaitAsync));
                using (var fresh = postgres!.Create())
                {
                    serveEmbeddedPg.Add(await ServeProcessRound.RunAsync(fresh.ConnectionString, fleet.Devices, fleet.Records, Enroll, WaitAsync));
                }

                for (var n = 1; n <= MaxInstances; n++)
                {
                    scaleOut[n - 1].Add(await ScaleOutAsync(fleet, postgres!, n));
                }
            }

            var e2e = mqtt ? endToEnd[^1] : null;
            var pgIn = pg ? pgInProcess[^1] : null;
            var pgE2e = pg && mqtt ? pgEndToEnd[^1] : null;
            Console.WriteLine($"{round,5} {bareOne[^1],10:F0}/s {bareAll[^1],8:F0}/s {evidenceAll[^1],11:F0}/s {Cell(inProcess[^1], bareAll[^1], 11)} {(pg ? Cell(pgIn, bareAll[^1], 11) + " " : string.Empty)}"
                + $"{Cell(e2e, bareAll[^1], 10)} {(pg ? Cell(pgE2e, bareAll[^1], 10) + " " : string.Empty)}  "
                + $"in-process {inProcess[^1].Verdict}{(pgIn is null ? string.Empty : "; pg in-process " + pgIn.Verdict)}{(e2e is null ? string.Empty : "; MQTT " + e2e.Verdict)}{(pgE2e is null ? string.Empty : "; pg MQTT " + pgE2e.Verdict)}");
            if (serve)
            {
                foreach (var (label, one) in new[] { ("SQLite", serveEmbedded[^1]), ("PostgreSQL", serveEmbeddedPg[^1]) })
                {
                    Console.WriteLine($"{string.Empty,5} serve process, embedded broker, {label}: {one.Rate:F0}/s {one.Rate / bareAll[^1],4:P0} {one.Verdict}; "
                        + $"CPU per record: service {one.ServiceMicrosPerRecord:F0} µs, devices {one.DevicesMicrosPerRecord:F0} µs");
                }

                Console.WriteLine($"{string.Empty,5} serve processes on mosquitto + PostgreSQL: "
                    + string.Join(", ", scaleOut.Select((r, i) => $"{i + 1}: {r[^1].Rate:F0}/s {r[^1].Rate / bareAll[^1],4:P0} {r[^1].Verdict}")));
            }
        }

        var bare = Stats.Median(bareAll);
        Console.WriteLine();
        Console.WriteLine($"medians over {rounds} rounds (load average now {LoadAverage()}):");
        Console.WriteLine($"  {"bare ECDSA P-256 verify, 1 core",-52} {Stats.Median(bareOne),8:F0}/s");
        Console.WriteLine($"  {$"bare ECDSA P-256 verify, {Environment.ProcessorCount} cores",-52} {bare,8:F0}/s");
        Console.WriteLine($"  {$"evidence verify (COSE + ES256 + CBOR), {Environment.ProcessorCount} cores",-52} {Stats.Median(evidenceAll),8:F0}/s (median of rounds' ratio to bare: {Stats.Median([.. evidenceAll.Select((e, i) => e / bareAll[i])]):P0})");
        Print("ingest in process (verify + store FULL + receipt)", inProcess, bareAll);
        if (pg)
        {
            Print("ingest in process on PostgreSQL", pgInProcess, bareAll);
            Console.WriteLine($"  {string.Empty,-52} PostgreSQL / SQLite in process, median of rounds: {Stats.Median([.. pgInProcess.Select((r, i) => r.Rate / inProcess[i].Rate)]):P0}");
        }

        if (mqtt)
        {
            Print("ingest over MQTT (embedded broker, QoS 1, receipts)", endToEnd, bareAll);
            if (pg)
            {
                Print("ingest over MQTT on PostgreSQL", pgEndToEnd, bareAll);
                Console.WriteLine($"  {string.Empty,-52} PostgreSQL / SQLite over MQTT, median of rounds: {Stats.Median([.. pgEndToEnd.Select((r, i) => r.Rate / endToEnd[i].Rate)]):P0}");
            }
        }

        if (serve)
        {
            foreach (var (label, runs) in new[] { ("SQLite", serveEmbedded), ("PostgreSQL", serveEmbeddedPg) })
            {
                var serveRates = runs.Select(r => r.Rate).ToList();
                Console.WriteLine($"  {$"1 serve process, embedded broker, {label}",-52} {Stats.Median(serveRates),8:F0}/s (min {serveRates.Min():F0}, max {serveRates.Max():F0}); / bare verify on all cores = {Stats.Median([.. serveRates.Select((r, i) => r / bareAll[i])]):P0}");
                Console.WriteLine($"  {string.Empty,-52} CPU per record, median of rounds: service {Stats.Median([.. runs.Select(r => r.ServiceMicrosPerRecord)]):F0} µs, "
                    + $"devices (this process) {Stats.Median([.. runs.Select(r => r.DevicesMicrosPerRecord)]):F0} µs; "
                    + $"{Environment.ProcessorCount} cores / the service's CPU per record = {Stats.Median([.. runs.Select(r => r.ServiceCeiling)]):F0}/s (a ceiling, not a measurement)");
            }

            for (var n = 1; n <= MaxInstances; n++)
            {
                var rates = scaleOut[n - 1].Select(r => r.Rate).ToList();
                Console.WriteLine($"  {$"{n} serve process(es), mosquitto $share, PostgreSQL",-52} {Stats.Median(rates),8:F0}/s (min {rates.Min():F0}, max {rates.Max():F0}); / bare verify on all cores = {Stats.Median([.. rates.Select((r, i) => r / bareAll[i])]):P0}"
                    + (n > 1 ? $"; / 1 process = {Stats.Median([.. rates.Select((r, i) => r / scaleOut[0][i].Rate)]):P0}" : string.Empty));
            }

            Console.WriteLine($"  {string.Empty,-52} on {Environment.ProcessorCount} cores the processes split the same CPUs: this shows the split (no loss, no double store), not added capacity");
        }

        // One table: every row's median and the median of its per-round ratio to bare verify on all cores.
        Console.WriteLine();
        Console.WriteLine($"| row | records/s (median of {rounds}) | / bare verify, {Environment.ProcessorCount} cores | zero loss |");
        Console.WriteLine("|---|---:|---:|---|");
        void Row(string label, IReadOnlyList<double> rates, string? lossless = null, string? extra = null) =>
            Console.WriteLine($"| {label} | {Stats.Median(rates):F0} | {Stats.Median([.. rates.Select((r, i) => r / bareAll[i])]):P0}{extra} | {lossless ?? string.Empty} |");
        string Loss(IReadOnlyList<bool> rounds) => $"{rounds.Count(l => l)}/{rounds.Count} rounds";
        Row("bare ECDSA P-256 verify, 1 core", bareOne);
        Row($"bare ECDSA P-256 verify, {Environment.ProcessorCount} cores", bareAll);
        Row($"evidence verify (COSE + ES256 + CBOR), {Environment.ProcessorCount} cores", evidenceAll);
        if (agentSign.Count > 0)
        {
            Row("agent: sign alone, PKCS#11 (SoftHSM)", agentSign);
            Row("agent: sign + enqueue, group commit, PKCS#11", agentEnqueue, null,
                $" ({Stats.Median([.. agentEnqueue.Select((r, i) => r / agentSign[i])]):P0} of signing alone, {Stats.Median(agentFsyncs):F3} fsyncs/record)");
        }

        Row("ingest in process, SQLite (synchronous=FULL)", [.. inProcess.Select(r => r.Rate)], Loss([.. inProcess.Select(r => r.Lossless)]));
        if (pg)
        {
            Row("ingest in process, PostgreSQL", [.. pgInProcess.Select(r => r.Rate)], Loss([.. pgInProcess.Select(r => r.Lossless)]));
        }

        if (mqtt)
        {
            Row("ingest over MQTT (embedded broker, QoS 1, receipts), SQLite", [.. endToEnd.Select(r => r.Rate)], Loss([.. endToEnd.Select(r => r.Lossless)]),
                $" ({Stats.Median([.. endToEnd.Select((r, i) => r.Rate / inProcess[i].Rate)]):P0} of in process)");
            if (pg)
            {
                Row("ingest over MQTT, PostgreSQL", [.. pgEndToEnd.Select(r => r.Rate)], Loss([.. pgEndToEnd.Select(r => r.Lossless)]),
                    $" ({Stats.Median([.. pgEndToEnd.Select((r, i) => r.Rate / pgInProcess[i].Rate)]):P0} of in process)");
            }
        }

        if (serve)
        {
            foreach (var (label, runs) in new[] { ("SQLite", serveEmbedded), ("PostgreSQL", serveEmbeddedPg) })
            {
                Row($"1 `serve` process, embedded broker, {label}", [.. runs.Select(r => r.Rate)], Loss([.. runs.Select(r => r.Lossless)]),
                    $" (CPU per record: service {Stats.Median([.. runs.Select(r => r.ServiceMicrosPerRecord)]):F0} µs, devices {Stats.Median([.. runs.Select(r => r.DevicesMicrosPerRecord)]):F0} µs; "
                    + $"{Environment.ProcessorCount} cores / service CPU = {Stats.Median([.. runs.Select(r => r.ServiceCeiling)]):F0}/s)");
            }

            for (var n = 1; n <= MaxInstances; n++)
            {
                var runs = scaleOut[n - 1];
                Row($"{n} `serve` process{(n > 1 ? "es" : string.Empty)}, mosquitto $share, PostgreSQL", [.. runs.Select(r => r.Rate)], Loss([.. runs.Select(r => r.Lossless)]),
                    n > 1 ? $" ({Stats.Median([.. runs.Select((r, i) => r.Rate / scaleOut[0][i].Rate)]):P0} of one)" : null);
            }
        }

        Console.WriteLine();
        List<RoundResult> all = [.. inProcess, .. endToEnd, .. pgInProcess, .. pgEndToEnd];
        var scaleOutRounds = scaleOut.SelectMany(r => r).Concat(serveEmbedded.Concat(serveEmbeddedPg).Select(r => (r.Rate, r.Lossless, r.Verdict))).ToList();
        var lossless = all.All(r => r.Lossless) && scaleOutRounds.All(r => r.Lossless);
        Console.WriteLine(lossless
            ? $"zero loss: every record of every round stored exactly once and receipted 'stored' ({all.Count + scaleOutRounds.Count} rounds)"
            : "LOSS: at least one round did not store or receipt every record exactly once (see the rounds above)");
        foreach (var (_, key) in fleet.Devices)
        {
            key.Dispose();
        }

        Directory.Delete(agentRoot, recursive: true);
    }

    private static int IntOption(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>
    /// The median rate, and the median of each round's ingest / bare-verify ratio: both were measured
    /// in the same round, so load from elsewhere on the machine mostly cancels out of the ratio.
    /// </summary>
    private static void Print(string label, List<RoundResult> results, List<double> bareAll)
    {
        var rates = results.Select(r => r.Rate).ToList();
        var ratios = results.Select((r, i) => r.Rate / bareAll[i]).ToList();
        var intervals = results.SelectMany(r => r.CommitIntervals).ToList();
        var sizes = results.SelectMany(r => r.BatchSizes).Select(s => (double)s).ToList();
        Console.WriteLine($"  {label,-52} {Stats.Median(rates),8:F0}/s (min {rates.Min():F0}, max {rates.Max():F0}); ingest / bare verify on all cores = {Stats.Median(ratios):P0}");
        if (sizes.Count > 0)
        {
            Console.WriteLine($"  {string.Empty,-52} {sizes.Count / results.Count,8} commits per round, median {Stats.Median(sizes):F0} records each, {(intervals.Count > 0 ? $"median {Stats.Median(intervals):F1} ms from one commit's receipts to the next" : "no interval between commits (one commit per round)")}");
        }
    }

    /// <summary>A round's rate and its ratio to the same round's bare verify on all cores, or dashes.</summary>
    private static string Cell(RoundResult? result, double bare, int width) =>
        (result is null ? "-" : result.Rate.ToString("F0", CultureInfo.InvariantCulture) + "/s").PadLeft(width) + " "
            + (result is null ? "-" : (result.Rate / bare).ToString("P0", CultureInfo.InvariantCulture)).PadLeft(6);

    /// <summary>
    /// The pipeline as the service runs it, fed straight from memory: verify, store (SQLite
    /// synchronous=FULL, or a fresh PostgreSQL database when <paramref name="postgres"/> is given), receipt.
    /// </summary>
    private static async Task<RoundResult> InProcessRoundAsync(Fleet fleet, PostgresDatabases? postgres)
    {
        using var folder = new TempFolder();
        using var fresh = postgres?.Create();
        using var db = fresh is null ? new ClaimsDatabase(Path.Combine(folder.Path, "claims.db")) : ClaimsDatabase.Open(fresh.ConnectionString);
        using var engine = new ClaimsEngine(db, new NoSigner(), TimeProvider.System);
        await fleet.EnrollAsync(engine);
        var payloads = new ConcurrentQueue<byte[]>();
        var ingest = new EvidenceIngest(engine, (_, payload, _) =>
        {
            payloads.Enqueue(payload); // decoded after the clock stops
            return Task.CompletedTask;
        }, TimeProvider.System, Unlimited);
        var commits = new CommitLog();
        ingest.BatchCommitted += commits.Mark;
        ingest.AfterStoreBeforeReceipts = commits.Stored;
        await using (ingest)
        {
            ingest.Start();
            var clock = Stopwatch.StartNew();
            foreach (var message in fleet.Stream)
            {
                await ingest.SubmitAsync(message, default);
            }

            await WaitAsync(() => payloads.Count, fleet.Stream.Count);
            var elapsed = clock.Elapsed;
            var receipts = payloads.Select(p => EvidenceReceipt.TryDecode(p, out var receipt) ? receipt : null).OfType<EvidenceReceipt>();
            return RoundResult.Check(fleet, db, receipts, ingest.Metrics, elapsed, commits);
        }
    }

    /// <summary>Real <c>sharevault serve</c> processes behind mosquitto on a fresh PostgreSQL database (<see cref="ScaleOutRound"/>).</summary>
    private static async Task<(double Rate, bool Lossless, string Verdict)> ScaleOutAsync(Fleet fleet, PostgresDatabases postgres, int instances)
    {
        using var fresh = postgres.Create();
        using (var db = ClaimsDatabase.Open(fresh.ConnectionString))
        using (var engine = new ClaimsEngine(db, new NoSigner(), TimeProvider.System))
        {
            await fleet.EnrollAsync(engine);
        }

        return await ScaleOutRound.RunAsync(instances, fresh.ConnectionString, fleet.Devices, fleet.Records, database =>
        {
            using var db = ClaimsDatabase.Open(database);
            using var reader = db.OpenReader();
            return (Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(*) FROM evidence"), CultureInfo.InvariantCulture),
                Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(DISTINCT hash) FROM evidence"), CultureInfo.InvariantCulture));
        }, WaitAsync);
    }

    /// <summary>
    /// End to end: ClaimsHost with its embedded broker on loopback, one MQTT 5 client per device that
    /// logs in with its device proof, subscribes to its receipts and publishes its records (QoS 1, in
    /// sequence order). The clock runs from the first publish to the last receipt received.
    /// </summary>
    private static async Task<RoundResult> MqttRoundAsync(Fleet fleet, PostgresDatabases? postgres)
    {
        using var folder = new TempFolder();
        using var fresh = postgres?.Create();
        var options = new ServiceOptions
        {
            DataDir = folder.Path,
            DatabasePath = fresh?.ConnectionString,
            MqttPort = FreePort(),
            MqttTlsPort = 0,
            HttpPort = null,

            // Checkpoints would need the pool key; this measures ingest.
            Claims = new ClaimsOptions { CheckpointEvery = int.MaxValue, CheckpointInterval = TimeSpan.MaxValue },
            Ingest = Unlimited,
        };
        var host = await ClaimsHost.StartAsync(options, new NoSigner(), TimeProvider.System, default);
        var clients = new List<DevicePublisher>();
        try
        {
            await fleet.EnrollAsync(host.Engine);
            var commits = new CommitLog();
            host.Ingest.BatchCommitted += commits.Mark;
            host.Ingest.AfterStoreBeforeReceipts = commits.Stored;
            var receipts = new ConcurrentQueue<EvidenceReceipt>();
            clients.AddRange(await DevicePublisher.ConnectAllAsync(fleet.Devices, options.MqttPort, receipts, withProof: true));

            var clock = Stopwatch.StartNew();
            var publishing = Task.WhenAll(clients.Select((client, d) => Task.Run(() => client.PublishAsync(fleet.Records[d]))));
            await WaitAsync(() => receipts.Count, fleet.Stream.Count);
            var elapsed = clock.Elapsed;
            await publishing;
            return RoundResult.Check(fleet, host.Database, receipts, host.Ingest.Metrics, elapsed, commits);
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
            await host.DisposeAsync();
        }
    }

    /// <summary>Waits until <paramref name="count"/> reaches <paramref name="expected"/> or stops moving for <see cref="Stall"/>.</summary>
    private static async Task WaitAsync(Func<int> count, int expected)
    {
        var last = -1;
        var since = Stopwatch.StartNew();
        while (count() is var now && now < expected)
        {
            if (now != last)
            {
                (last, since) = (now, Stopwatch.StartNew());
            }
            else if (since.Elapsed > Stall)
            {
                return;
            }

            await Task.Delay(2);
        }
    }

    private static double ParallelRate(TimeSpan duration, byte[] hash, byte[] signature, byte[] spki)
    {
        var counts = new long[Environment.ProcessorCount];
        var clock = Stopwatch.StartNew();
        Parallel.For(0, counts.Length, new ParallelOptions { MaxDegreeOfParallelism = counts.Length }, i =>
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(spki, out _);
            while (clock.Elapsed < duration)
            {
                key.VerifyHash(hash, signature);
                counts[i]++;
            }
        });
        return counts.Sum() / clock.Elapsed.TotalSeconds;
    }

    /// <summary>What ingest's verify stage does per record, without storing: COSE_Sign1 decode, ES256 verify, CBOR payload decode.</summary>
    private static double EvidenceVerifyRate(TimeSpan duration, Fleet fleet)
    {
        var counts = new long[Environment.ProcessorCount];
        var keys = counts.Select(thread => fleet.Devices.ToDictionary(d => d.Id, d =>
        {
            var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(d.Key.ExportSubjectPublicKeyInfo(), out _);
            return key;
        }, StringComparer.Ordinal)).ToArray();
        var clock = Stopwatch.StartNew();
        Parallel.For(0, counts.Length, new ParallelOptions { MaxDegreeOfParallelism = counts.Length }, i =>
        {
            for (var n = i; clock.Elapsed < duration; n += counts.Length)
            {
                if (!EvidenceVerifier.Verify(fleet.Stream[n % fleet.Stream.Count].Payload.Span, id => keys[i].GetValueOrDefault(id)).IsValid)
                {
                    throw new InvalidOperationException("a fleet record does not verify");
                }

                counts[i]++;
            }
        });
        var rate = counts.Sum() / clock.Elapsed.TotalSeconds;
        foreach (var key in keys.SelectMany(k => k.Values))
        {
            key.Dispose();
        }

        return rate;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static int FreePort() => ShareVault.Hardware.LoopbackPorts.Reserve();

    /// <summary>Devices (id, key), each one's signed chain, and the stream interleaving them as a broker would.</summary>
    private sealed record Fleet(List<(string Id, ECDsa Key)> Devices, List<byte[]>[] Records, List<IncomingEvidence> Stream)
    {
        public static Fleet Create(int devices, int perDevice)
        {
            var fleet = Enumerable.Range(0, devices).Select(i => (Id: $"bench-{i:D4}", Key: ECDsa.Create(ECCurve.NamedCurves.nistP256))).ToList();

            // At one record per 30 s, ending well before now (at least two hours back), so every record is inside the service's time window.
            var start = DateTimeOffset.UtcNow.AddHours(-2) - TimeSpan.FromSeconds(30 * perDevice);
            var records = new List<byte[]>[devices];
            Parallel.For(0, devices, d =>
            {
                var (id, key) = fleet[d];
                var previous = Array.Empty<byte>();
                records[d] = new List<byte[]>(perDevice);
                for (var s = 0; s < perDevice; s++)
                {
                    var t = start.AddSeconds(s * 30);
                    var cose = EvidenceSigner.Sign(new EvidenceRecord(id, s, t, previous,
                    [
                        new Reading("temperature", "Cel", 20 + (s % 5), t), new Reading("humidity", "%RH", 45, t), new Reading("water_leak", null, 0, t),
                    ]), key);
                    previous = EvidenceRecord.Hash(cose);
                    records[d].Add(cose);
                }
            });

            var stream = new List<IncomingEvidence>(devices * perDevice);
            for (var s = 0; s < perDevice; s++)
            {
                for (var d = 0; d < devices; d++)
                {
                    stream.Add(new IncomingEvidence(EvidenceTopics.Evidence(fleet[d].Id), records[d][s], fleet[d].Id));
                }
            }

            return new Fleet(fleet, records, stream);
        }

        /// <summary>The same devices with only the first <paramref name="perDevice"/> records of each chain.</summary>
        public Fleet Take(int perDevice)
        {
            // The stream is sequence-major (every device's record 0, then every device's record 1, …).
            return new Fleet(Devices, [.. Records.Select(r => r.Take(perDevice).ToList())], [.. Stream.Take(perDevice * Devices.Count)]);
        }

        /// <summary>A pool whose one policy every device's records are evaluated against (so the store does its real work).</summary>
        public async Task EnrollAsync(ClaimsEngine engine)
        {
            await engine.CreatePoolAsync("bench", "bench", "EUR", "none", 1000, default);
            await engine.AddMemberAsync("bench", "m", "m", default);
            await engine.IssuePolicyAsync("bench", "m", "p", "water_leak == 1 for 10m", 100, 0, null, default);
            foreach (var (id, key) in Devices)
            {
                await engine.EnrollDeviceAsync("bench", "m", id, key.ExportSubjectPublicKeyInfo(), default);
            }
        }
    }

    /// <summary>Per commit: records stored, and the time since the previous commit's receipts were out.</summary>
    private sealed class CommitLog
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _last;

        public List<int> Sizes { get; } = [];

        public List<double> Intervals { get; } = [];

        /// <summary>Runs on the store stage right after StoreAsync returns.</summary>
        public Task Stored(IReadOnlyList<VerifiedRecord> records, CancellationToken cancellationToken)
        {
            Sizes.Add(records.Count);
            return Task.CompletedTask;
        }

        public void Mark()
        {
            var now = _clock.Elapsed;
            Intervals.Add((now - _last).TotalMilliseconds);
            _last = now;
        }
    }

    private sealed record RoundResult(double Rate, bool Lossless, string Verdict, List<int> BatchSizes, List<double> CommitIntervals)
    {
        /// <summary>Zero loss: every record is in the database exactly once, the ingest counted each as newly stored, and each got a 'stored' receipt.</summary>
        public static RoundResult Check(Fleet fleet, ClaimsDatabase db, IEnumerable<EvidenceReceipt> receipts, IngestMetrics metrics, TimeSpan elapsed, CommitLog commits)
        {
            var expected = fleet.Stream.Count;
            long rows, distinct;
            using (var reader = db.OpenReader())
            {
                rows = Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(*) FROM evidence"), CultureInfo.InvariantCulture);
                distinct = Convert.ToInt64(ClaimsDatabase.Scalar(reader, null, "SELECT COUNT(DISTINCT hash) FROM evidence"), CultureInfo.InvariantCulture);
            }

            var decoded = receipts.ToList();
            var storedReceipts = decoded.Where(r => r.Status == ReceiptStatus.Stored).Select(r => r.Hash).Distinct(StringComparer.Ordinal).Count();
            var stored = metrics.StoredCount;
            var rejected = metrics.Rejections.Values.Sum();
            var lossless = rows == expected && distinct == expected && stored == expected && storedReceipts == expected && rejected == 0;
            var verdict = lossless
                ? $"ok ({expected} stored, {expected} receipted)"
                : $"LOSS: {rows} rows ({distinct} distinct) of {expected}, {stored} counted stored, {storedReceipts} 'stored' receipts of {decoded.Count}, {rejected} rejected";

            // The first interval runs from the set-up, not from a previous commit.
            return new RoundResult(expected / elapsed.TotalSeconds, lossless, verdict, [.. commits.Sizes], [.. commits.Intervals.Skip(1)]);
        }
    }

    private sealed class TempFolder : IDisposable
    {
        public TempFolder()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sv-ingest-bench-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The benchmark measures ingest only; no payout or checkpoint is signed.</summary>
    private sealed class NoSigner : IPoolSigner
    {
        public bool Exists(string keyName) => true;

        public JsonObject Jwks(string keyName) => new() { ["keys"] = new JsonArray() };

        public Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("The ingest benchmark signs nothing");
    }
}
