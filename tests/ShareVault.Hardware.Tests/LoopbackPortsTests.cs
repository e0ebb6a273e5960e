namespace ShareVault.Hardware.Tests;

/// <summary>Port reservations across processes: a port whose lock file another holder has is taken, never an exception.</summary>
public sealed class LoopbackPortsTests
{
    [Fact]
    public void A_port_whose_lock_another_holder_has_is_reported_taken()
    {
        // Another process's reservation, as the kernel sees it: an exclusive flock on the port's lock
        // file (a FileShare.None stream takes LOCK_EX; flock locks belong to the open file, so one held
        // here conflicts with LoopbackPorts' own open exactly as another process's would).
        var port = 65_000 + Random.Shared.Next(500);
        var directory = Path.Combine(Path.GetTempPath(), "sharevault-ports");
        Directory.CreateDirectory(directory);
        using (var other = new FileStream(Path.Combine(directory, $"{port}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            Assert.False(LoopbackPorts.TryReserve(port));
        }

        var free = LoopbackPorts.Reserve();
        Assert.False(LoopbackPorts.TryReserve(free)); // this process's own reservation is taken too
    }
}
