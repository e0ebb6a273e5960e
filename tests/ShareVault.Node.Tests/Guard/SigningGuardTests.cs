using ShareVault.Claims.Ledger;
using ShareVault.Node.Guard;

namespace ShareVault.Node.Tests.Guard;

public sealed class SigningGuardTests
{
    [Fact]
    public void The_head_of_a_pool_the_node_has_never_seen_is_sequence_zero_and_the_genesis_hash()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sv-guard-" + Guid.NewGuid().ToString("N")[..10]);
        using var guard = new SigningGuard(new GuardOptions(dir, [], 50_000, 100_000, false, TimeProvider.System));
        Assert.Equal(new LedgerHead(0, LedgerEntry.Genesis), guard.Head("pool-unknown"));
    }
}
