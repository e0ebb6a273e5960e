using System.Globalization;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace DeviceAgent.Storage;

/// <summary>A record waiting in the outbox for the service's receipt.</summary>
public sealed record OutboxEntry(long Sequence, string Hash, long Size, DateTimeOffset Enqueued, string Path);

/// <summary>
/// Bounds of the outbox. When adding a record would exceed <see cref="MaxRecords"/> or
/// <see cref="MaxBytes"/>, the <b>oldest</b> records are dropped to make room (newest evidence is
/// what a claim in progress needs) and <see cref="Outbox.DroppedWhenFull"/> counts them; records
/// older than <see cref="MaxAge"/> are dropped too (<see cref="Outbox.Expired"/>).
/// </summary>
public sealed record OutboxLimits
{
    public int MaxRecords { get; init; } = 100_000;

    public long MaxBytes { get; init; } = 256L * 1024 * 1024;

    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(30);
}

/// <summary>
/// Durable on-disk queue of signed records: one file per record (<c>&lt;seq&gt;-&lt;unix ms&gt;.cose</c>)
/// written crash-safely (temp, fsync, rename, fsync folder). A record leaves only when the service's
/// receipt says stored or duplicate (<see cref="Release"/>), when the service rejects it for good
/// (<see cref="Reject"/>: moved to <c>rejected/</c>), or by the documented bounds.
/// </summary>
public sealed class Outbox : IDisposable
{
    private const string Extension = ".cose";
    private readonly string _directory;
    private readonly string _rejectedDirectory;
    private readonly OutboxLimits _limits;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, OutboxEntry> _entries = [];
    private readonly Dictionary<string, long> _byHash = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _changed = new(0, int.MaxValue);
    private long _bytes;

    private Outbox(string directory, OutboxLimits limits, TimeProvider time)
    {
        _directory = directory;
        _rejectedDirectory = Path.Combine(directory, "rejected");
        _limits = limits;
        _time = time;
    }

    /// <summary>Records dropped (oldest first) because the outbox was full.</summary>
    public long DroppedWhenFull { get; private set; }

    /// <summary>Records dropped because they were older than <see cref="OutboxLimits.MaxAge"/>.</summary>
    public long Expired { get; private set; }

    /// <summary>Records the service rejected (moved to <c>rejected/</c>).</summary>
    public long Rejected { get; private set; }

    /// <summary>Records released by a stored/duplicate receipt.</summary>
    public long Released { get; private set; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    public long Bytes
    {
        get
        {
            lock (_gate)
            {
                return _bytes;
            }
        }
    }

    /// <summary>The newest record, if any.</summary>
    public OutboxEntry? Newest
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count == 0 ? null : _entries.Values.Last();
            }
        }
    }

    /// <summary>Opens the outbox in <paramref name="directory"/>, recovering what a crash left.</summary>
    public static Outbox Open(string directory, OutboxLimits? limits = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var outbox = new Outbox(Path.GetFullPath(directory), limits ?? new OutboxLimits(), time ?? TimeProvider.System);
        Directory.CreateDirectory(outbox._directory);
        Directory.CreateDirectory(outbox._rejectedDirectory);
        foreach (var temp in Directory.EnumerateFiles(outbox._directory, ".*.tmp"))
        {
            // A write that never reached its rename: the record was never acknowledged as enqueued.
            File.Delete(temp);
        }

        foreach (var file in Directory.EnumerateFiles(outbox._directory, "*" + Extension))
        {
            if (TryParseName(Path.GetFileName(file), out var sequence, out var enqueued))
            {
                var bytes = File.ReadAllBytes(file);
                outbox.Track(new OutboxEntry(sequence, Convert.ToHexStringLower(EvidenceRecord.Hash(bytes)), bytes.Length, enqueued, file));
            }
        }

        return outbox;
    }

    /// <summary>Adds a signed record; it is on disk when this returns. Applies the bounds first.</summary>
    public OutboxEntry Add(long sequence, ReadOnlySpan<byte> cose)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        var now = _time.GetUtcNow();
        var path = Path.Combine(_directory, string.Create(CultureInfo.InvariantCulture, $"{sequence:D19}-{now.ToUnixTimeMilliseconds()}{Extension}"));
        var entry = new OutboxEntry(sequence, Convert.ToHexStringLower(EvidenceRecord.Hash(cose)), cose.Length, now, path);
        lock (_gate)
        {
            if (_entries.ContainsKey(sequence))
            {
                throw new InvalidOperationException($"The outbox already holds sequence {sequence}");
            }

            MakeRoom(now, cose.Length);
            DurableFile.WriteAtomic(path, cose);
            Track(entry);
        }

        _changed.Release();
        return entry;
    }

    /// <summary>Records in sequence order.</summary>
    public IReadOnlyList<OutboxEntry> Snapshot()
    {
        lock (_gate)
        {
            return [.. _entries.Values];
        }
    }

    /// <summary>The record's bytes, or null when it has left the outbox meanwhile.</summary>
    public byte[]? Read(OutboxEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        try
        {
            return File.ReadAllBytes(Path.Combine(_directory, Path.GetFileName(entry.Path)));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public bool Contains(string hash)
    {
        lock (_gate)
        {
            return _byHash.ContainsKey(hash);
        }
    }

    /// <summary>Deletes the record with this hash (the service stored it). False when unknown.</summary>
    public bool Release(string hash)
    {
        lock (_gate)
        {
            if (!TryUntrack(hash, out var entry))
            {
                return false;
            }

            File.Delete(entry.Path);
            Released++;
        }

        return true;
    }

    /// <summary>Moves the record with this hash aside: the service will never store it. False when unknown.</summary>
    public bool Reject(string hash)
    {
        lock (_gate)
        {
            if (!TryUntrack(hash, out var entry))
            {
                return false;
            }

            File.Move(entry.Path, Path.Combine(_rejectedDirectory, Path.GetFileName(entry.Path)), overwrite: true);
            Rejected++;
        }

        return true;
    }

    /// <summary>Waits until a record is added or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForRecordsAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            await _changed.WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Disposed while waiting: the caller's loop ends on its cancellation token.
        }
    }

    public void Dispose() => _changed.Dispose();

    private void MakeRoom(DateTimeOffset now, long incoming)
    {
        while (_entries.Count > 0)
        {
            var oldest = _entries.Values.First();
            var expired = now - oldest.Enqueued > _limits.MaxAge;
            var full = _entries.Count + 1 > _limits.MaxRecords || _bytes + incoming > _limits.MaxBytes;
            if (!expired && !full)
            {
                return;
            }

            TryUntrack(oldest.Hash, out _);
            File.Delete(oldest.Path);
            if (expired)
            {
                Expired++;
            }
            else
            {
                DroppedWhenFull++;
            }
        }
    }

    private void Track(OutboxEntry entry)
    {
        _entries[entry.Sequence] = entry;
        _byHash[entry.Hash] = entry.Sequence;
        _bytes += entry.Size;
    }

    private bool TryUntrack(string hash, out OutboxEntry entry)
    {
        entry = null!;
        if (!_byHash.Remove(hash, out var sequence) || !_entries.Remove(sequence, out var found))
        {
            return false;
        }

        entry = found;
        _bytes -= found.Size;
        return true;
    }

    private static bool TryParseName(string name, out long sequence, out DateTimeOffset enqueued)
    {
        sequence = 0;
        enqueued = default;
        var stem = name.AsSpan(0, name.Length - Extension.Length);
        var dash = stem.IndexOf('-');
        if (dash <= 0
            || !long.TryParse(stem[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out sequence)
            || !long.TryParse(stem[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            || ms > 253_402_300_799_999)
        {
            return false;
        }

        enqueued = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        return true;
    }
}
