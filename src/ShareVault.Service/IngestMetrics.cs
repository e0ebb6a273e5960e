using System.Diagnostics.Metrics;

namespace ShareVault.Service;

/// <summary>
/// The service's counters as <see cref="System.Diagnostics.Metrics"/> instruments on a meter named
/// <see cref="MeterName"/> (one meter per running service, so two services in one process count
/// apart), read back through a <see cref="PrometheusExporter"/> for <c>/metrics</c> and tests.
/// Instrument names follow the OpenTelemetry convention (dots, a <c>{record}</c> annotation unit),
/// so any Prometheus exporter shows them under the names <c>/metrics</c> uses
/// (<c>sharevault.evidence.received</c> → <c>sharevault_evidence_received_total</c>).
/// </summary>
internal sealed class IngestMetrics : IDisposable
{
    public const string MeterName = "ShareVault.Service";

    /// <summary>The tag that names a rejection's reason (an <see cref="ShareVault.Evidence.EvidenceRejection"/> name or an ingest reason).</summary>
    public const string ReasonTag = "reason";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _received;
    private readonly Counter<long> _verified;
    private readonly Counter<long> _stored;
    private readonly Counter<long> _duplicate;
    private readonly Counter<long> _storeFailures;
    private readonly Counter<long> _abandoned;
    private readonly Counter<long> _refusedByBroker;
    private readonly Counter<long> _rejected;
    private readonly PrometheusExporter _exporter;
    private Func<long> _chainBreaks = () => 0;

    public IngestMetrics()
    {
        _received = _meter.CreateCounter<long>("sharevault.evidence.received", "{record}", "Evidence messages taken from the broker");
        _verified = _meter.CreateCounter<long>("sharevault.evidence.verified", "{record}", "Evidence messages checked (signature, topic, size, time window, rate)");
        _stored = _meter.CreateCounter<long>("sharevault.evidence.stored", "{record}", "Records stored and receipted");
        _duplicate = _meter.CreateCounter<long>("sharevault.evidence.duplicate", "{record}", "Records already stored, receipted again");
        _storeFailures = _meter.CreateCounter<long>("sharevault.ingest.store_failures", "{failure}", "Failed tries to store a batch or publish its receipts");
        _abandoned = _meter.CreateCounter<long>("sharevault.ingest.abandoned", "{record}", "Records of batches given up unreceipted (their senders retry)");
        _refusedByBroker = _meter.CreateCounter<long>("sharevault.broker.refused", "{message}", "Publishes the embedded broker refused (not authorised)");
        var chainBreaks = _meter.CreateObservableCounter("sharevault.evidence.chain_breaks", () => _chainBreaks(), "{record}", "Records whose hash does not follow their predecessor's");
        _rejected = _meter.CreateCounter<long>("sharevault.evidence.rejected", "{record}", "Records rejected, by reason");
        _exporter = new PrometheusExporter([(_received, null), (_verified, null), (_stored, null), (_duplicate, null), (_storeFailures, null), (_abandoned, null), (_refusedByBroker, null), (chainBreaks, null), (_rejected, ReasonTag)]);
    }

    public long ReceivedCount => _exporter.Total(_received);

    public long VerifiedCount => _exporter.Total(_verified);

    public long StoredCount => _exporter.Total(_stored);

    public long DuplicateCount => _exporter.Total(_duplicate);

    public long StoreFailureCount => _exporter.Total(_storeFailures);

    public long AbandonedCount => _exporter.Total(_abandoned);

    public long RefusedByBrokerCount => _exporter.Total(_refusedByBroker);

    /// <summary>Records rejected so far, by reason.</summary>
    public IReadOnlyDictionary<string, long> Rejections => _exporter.ByLabel(_rejected);

    /// <summary>Where the chain-break count comes from (the claims engine counts them as it evaluates).</summary>
    public void ObserveChainBreaks(Func<long> count) => _chainBreaks = count ?? throw new ArgumentNullException(nameof(count));

    public void Received() => _received.Add(1);

    public void Verified(int count) => _verified.Add(count);

    public void Stored() => _stored.Add(1);

    public void Duplicate() => _duplicate.Add(1);

    public void StoreFailed() => _storeFailures.Add(1);

    public void Abandoned(int count) => _abandoned.Add(count);

    public void RefusedByBroker() => _refusedByBroker.Add(1);

    public void CountRejection(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>(ReasonTag, reason));

    /// <summary>Every counter in the Prometheus text exposition format 0.0.4.</summary>
    public string PrometheusText() => _exporter.Write();

    public void Dispose()
    {
        _exporter.Dispose();
        _meter.Dispose();
    }
}
