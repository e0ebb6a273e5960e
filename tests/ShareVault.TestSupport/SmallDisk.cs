using System.Diagnostics;

namespace ShareVault.TestSupport;

/// <summary>
/// A real, small filesystem (tmpfs mounted on a temporary folder) that a test can fill up and then
/// grow, for disk-full drills. Mounting needs root, which the test machines and CI have; without
/// it the constructor fails with the reason (a drill that cannot run is not passed over).
/// </summary>
public sealed class SmallDisk : IDisposable
{
    public SmallDisk(int kibibytes)
    {
        Path = Directory.CreateTempSubdirectory("sv-small-disk-").FullName;
        Mount($"size={kibibytes}k,mode=0700");
    }

    public string Path { get; }

    /// <summary>Gives the filesystem more room without unmounting it, as freeing space would.</summary>
    public void Grow(int kibibytes) => Mount($"remount,size={kibibytes}k");

    public void Dispose()
    {
        Run("umount", "-l", Path);
        Directory.Delete(Path, recursive: true);
    }

    private void Mount(string options) => Run("mount", "-t", "tmpfs", "-o", options, "tmpfs", Path);

    private static void Run(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr.Trim()} (disk-full drills mount a tmpfs and need root)");
        }
    }
}
