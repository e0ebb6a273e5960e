using System.ComponentModel;
using System.Runtime.InteropServices;

namespace ShareVault.Hardware;

/// <summary>
/// Crash-safe file writes: write a temporary file, fsync it, rename it over the target (atomic on
/// POSIX, rename(2)), then fsync the directory so the rename itself survives a power cut
/// (fsync(2): "calling fsync() on the file does not ensure that the entry in the directory ... has
/// also reached disk"). Key records, TPM key blobs and the agent's outbox and sequence state all
/// go through here, so a power cut leaves either the old file or the new one, never a torn or
/// vanished one.
/// </summary>
public static partial class DurableFile
{
    private const int ORdOnly = 0;
    // O_DIRECTORY is 0200000 in asm-generic/fcntl.h (x86-64) but 040000 on arm and arm64
    // (arch/arm64/include/uapi/asm/fcntl.h), where 0200000 is O_DIRECT: open() of a directory then
    // fails with EINVAL, which the linux-arm64 agent hit under qemu-aarch64 (scripts/pi-build.sh).
    private static readonly int ODirectory = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x4000 : 0x10000;

    public static void WriteAtomic(string path, ReadOnlySpan<byte> content)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(directory, "." + Path.GetFileName(path) + ".tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true); // fsync(2) of the temporary file before it is renamed
            }

            File.Move(temp, path, overwrite: true);
        }
        catch (IOException)
        {
            // A full disk (ENOSPC) or an I/O error: the target is untouched; give back the space the
            // half-written temporary took, so a retry after space returns is not short of it.
            File.Delete(temp);
            throw;
        }

        SyncDirectory(directory);
    }

    /// <summary>
    /// Creates <paramref name="directory"/> (and missing parents) so the new entries survive a power
    /// cut: each directory created is fsynced into its parent.
    /// </summary>
    public static void CreateDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var full = Path.GetFullPath(directory);
        if (Directory.Exists(full))
        {
            return;
        }

        var parent = Path.GetDirectoryName(full);
        if (parent is not null)
        {
            CreateDirectory(parent);
        }

        Directory.CreateDirectory(full);
        if (parent is not null)
        {
            SyncDirectory(parent);
        }
    }

    /// <summary>fsync(2) on a directory, making creations, renames and deletions in it durable.</summary>
    public static void SyncDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(directory, ORdOnly | ODirectory);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open({directory}) for fsync failed: errno {errno} ({new Win32Exception(errno).Message})", errno);
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync({directory}) failed: errno {errno} ({new Win32Exception(errno).Message})", errno);
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
