using System.Diagnostics.Metrics;

namespace ShareVault.Service.Tests;

/// <summary>The service's counters are System.Diagnostics.Metrics instruments; <c>/metrics</c> shows them under the names and labels it always had.</summary>
public sealed class IngestMetricsTests
{
    [Fact]
    public void Metrics_text_keeps_the_Prometheus_names_labels_and_order()
    {
        using var metrics = new IngestMetrics();
        var chainBreaks = 2L;
        metrics.ObserveChainBreaks(() => chainBreaks);
        metrics.Received();
        metrics.Received();
        metrics.Received();
        metrics.Verified(3);
        metrics.Stored();
        metrics.Duplicate();
        metrics.StoreFailed();
        metrics.Abandoned(4);
        metrics.RefusedByBroker();
        metrics.CountRejection("TopicMismatch");
        metrics.CountRejection("BadSignature");
        metrics.CountRejection("BadSignature");
        chainBreaks = 5; // observed when the text is written, not when it was set

        Assert.Equal(
            """
            # TYPE sharevault_evidence_received_total counter
            sharevault_evidence_received_total 3
            # TYPE sharevault_evidence_verified_total counter
            sharevault_evidence_verified_total 3
            # TYPE sharevault_evidence_stored_total counter
            sharevault_evidence_stored_total 1
            # TYPE sharevault_evidence_duplicate_total counter
            sharevault_evidence_duplicate_total 1
            # TYPE sharevault_ingest_store_failures_total counter
            sharevault_ingest_store_failures_total 1
            # TYPE sharevault_ingest_abandoned_total counter
            sharevault_ingest_abandoned_total 4
            # TYPE sharevault_broker_refused_total counter
            sharevault_broker_refused_total 1
            # TYPE sharevault_evidence_chain_breaks_total counter
            sharevault_evidence_chain_breaks_total 5
            # TYPE sharevault_evidence_rejected_total counter
            sharevault_evidence_rejected_total{reason="BadSignature"} 2
            sharevault_evidence_rejected_total{reason="TopicMismatch"} 1

            """.ReplaceLineEndings("\n"),
            metrics.PrometheusText());
        Assert.Equal(2, metrics.Rejections["BadSignature"]);
    }

    [Fact]
    public void Counters_not_yet_measured_read_zero_and_a_rejection_label_is_escaped()
    {
        using var metrics = new IngestMetrics();
        metrics.CountRejection("odd\"reason\\");

        var text = metrics.PrometheusText();

        Assert.Contains("sharevault_evidence_received_total 0\n", text, StringComparison.Ordinal);
        Assert.Contains("sharevault_evidence_rejected_total{reason=\"odd\\\"reason\\\\\"} 1\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_services_in_one_process_count_apart_and_any_listener_sees_the_ShareVault_Service_meter()
    {
        using var first = new IngestMetrics();
        using var second = new IngestMetrics();
        var seen = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == IngestMetrics.MeterName && instrument.Name == "sharevault.evidence.stored")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref seen, value));
        listener.Start();

        first.Stored();
        first.Stored();
        second.Stored();

        Assert.Equal(2, first.StoredCount);
        Assert.Equal(1, second.StoredCount);
        Assert.True(Interlocked.Read(ref seen) >= 3, "an outside listener (dotnet-counters, OpenTelemetry) sees every service's counters"); // other tests of this process store records too
    }
}
