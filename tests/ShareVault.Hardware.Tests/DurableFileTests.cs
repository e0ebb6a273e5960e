namespace ShareVault.Hardware.Tests;

/// <summary>
/// <see cref="DurableFile"/> on real files and directories. The fsync path is observable through
/// its errors: SyncDirectory really open(2)s the directory with O_DIRECTORY, so a missing
/// directory fails with ENOENT and a regular file with ENOTDIR, each carrying the errno.
/// </summary>
public sealed class DurableFileTests : IDisposable
{
    private const int Enoent = 2;
    private const int Enotdir = 20;

    private readonly string _dir = Directory.CreateTempSubdirectory("sv-durable-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Write_replaces_the_file_and_leaves_no_temporary_behind()
    {
        var path = Path.Combine(_dir, "pool.json");
        DurableFile.WriteAtomic(path, "first"u8);
        DurableFile.WriteAtomic(path, "second"u8);

        Assert.Equal("second"u8.ToArray(), File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(_dir));
    }

    [Fact]
    public void Create_directory_makes_every_missing_level()
    {
        var nested = Path.Combine(_dir, "tpm", "custodian-b");
        DurableFile.CreateDirectory(nested);
        DurableFile.CreateDirectory(nested); // already there: nothing to do
        DurableFile.WriteAtomic(Path.Combine(nested, "pool.priv"), [1, 2, 3]);

        Assert.Equal([1, 2, 3], File.ReadAllBytes(Path.Combine(nested, "pool.priv")));
    }

    [Fact]
    public void Directory_sync_succeeds_on_a_real_directory()
    {
        DurableFile.SyncDirectory(_dir);
    }

    [Fact]
    public void Directory_sync_of_a_missing_directory_reports_ENOENT()
    {
        var e = Assert.Throws<IOException>(() => DurableFile.SyncDirectory(Path.Combine(_dir, "gone")));
        Assert.Equal(Enoent, e.HResult);
        Assert.Contains("errno 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Directory_sync_of_a_regular_file_reports_ENOTDIR()
    {
        var file = Path.Combine(_dir, "not-a-directory");
        File.WriteAllBytes(file, [0]);
        var e = Assert.Throws<IOException>(() => DurableFile.SyncDirectory(file));
        Assert.Equal(Enotdir, e.HResult);
    }

    [Fact]
    public void A_write_into_a_missing_directory_fails_before_anything_is_renamed()
    {
        var path = Path.Combine(_dir, "missing", "pool.json");
        Assert.ThrowsAny<IOException>(() => DurableFile.WriteAtomic(path, "x"u8));
        Assert.False(File.Exists(path));
    }
}
