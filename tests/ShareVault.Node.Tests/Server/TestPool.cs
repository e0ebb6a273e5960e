using ShareVault.Claims.Ingest;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Node.Tests.Server;

/// <summary>One test's pool: its id, its flood policy's id and its device (ids are unique per test: the engine's device and policy ids are global).</summary>
public sealed record TestPool(string Id, string Policy, SimulatedDevice Device)
{
    /// <summary>A record of the device verified as the ingest pipeline verifies it (what the engine stores).</summary>
    public VerifiedRecord ToVerified(byte[] cose)
    {
        var v = EvidenceVerifier.Verify(cose, id => id == Device.Id ? Device.Key : null);
        Assert.True(v.IsValid, v.Detail);
        var r = v.Record!;
        return new VerifiedRecord(r.DeviceId, r.Sequence, r.Time, v.Hash, cose, r.Readings, r.IsChainStart, r.PreviousHash.ToArray());
    }
}
