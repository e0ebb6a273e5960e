namespace ShareVault.Claims.Ingest;

/// <summary>
/// The stored records a claim's decision can be recomputed from: every record from the episode's
/// first to its last, so a verifier sees that none in between broke it, and the record before the
/// first, so it can check the first one's chain link too. Both the ledger export and the payout
/// justification a custody node checks carry exactly these.
/// </summary>
internal sealed class ClaimEvidence(EvidenceTable evidence, ChainFindings findings)
{
    /// <param name="deviceId">The claim's device.</param>
    /// <param name="firstSeq">The claim's first record.</param>
    /// <param name="lastSeq">The claim's last record.</param>
    public IEnumerable<StoredEvidence> Records(string deviceId, long firstSeq, long lastSeq)
    {
        var first = Math.Max(0, firstSeq - 1);

        // A record that arrived after evaluation moved past its gap was stored but never evaluated;
        // given to a verifier, it would be fed and recompute a different episode. Left out, it is the
        // gap the service saw.
        var skipped = findings.Gaps(deviceId).Where(g => g.SkippedAt is not null).ToList();
        return evidence.List(deviceId, first, (int)Math.Min(int.MaxValue, lastSeq - first + 1))
            .Where(record => record.Sequence <= lastSeq) // the limit counts records: without a record at first − 1 it would reach past the last
            .Where(record => !skipped.Any(g => record.Sequence >= g.From && record.Sequence <= g.To));
    }
}
