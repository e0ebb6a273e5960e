namespace ShareVault.Benchmarks;

/// <summary>
/// Everything of evidence throughput in one run, side by side (<see cref="IngestBenchmark"/> with
/// <c>--agent --postgres --serve</c>): per round, bare ECDSA P-256 verification on one and on all
/// cores, the agent's PKCS#11 signing alone and sign + enqueue with group commit, ingest in process
/// and over MQTT on SQLite and on PostgreSQL, one real <c>serve</c> process with its embedded broker on
/// SQLite and on PostgreSQL (with the CPU each process spent per record), and 1, 2 and 3 real
/// <c>serve</c> processes behind mosquitto on PostgreSQL; each round checks zero loss. Ends with one
/// table of medians and ratios to bare verification. Defaults (200 devices x 150 records: rounds of
/// several seconds, so what is measured is a running service rather than its start; 3 rounds) take
/// about 6-8 minutes on two cores; <c>--devices</c>, <c>--records</c>, <c>--rounds</c> and <c>--agent-seconds</c> change them,
/// any other <c>ingest</c> option passes through. The agent rows use 2 s windows as the <c>agent</c>
/// benchmark does: in 1 s opening the outbox and the first fsyncs weigh visibly on a loaded machine.
/// </summary>
internal sealed class EvidenceBenchmark : IBenchmark
{
    public string Name => "evidence";

    public string Description => "one run, one table: bare verify, agent PKCS#11 sign / sign+enqueue, ingest in process and over MQTT on SQLite and PostgreSQL, 1/2/3 serve processes "
        + "[--devices 200] [--records 150] [--rounds 3] [--agent-seconds 2] [--postgres=CONNSTRING]";

    public Task RunAsync(string[] args)
    {
        List<string> all = ["--agent", "--serve", .. args];
        if (!args.Any(a => a.StartsWith("--postgres", StringComparison.Ordinal)))
        {
            all.Add("--postgres");
        }

        foreach (var (option, value) in new[] { ("--devices", "200"), ("--records", "150"), ("--rounds", "3"), ("--agent-seconds", "2") })
        {
            if (!args.Contains(option))
            {
                all.AddRange([option, value]);
            }
        }

        return new IngestBenchmark().RunAsync([.. all]);
    }
}
