using System.Globalization;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace DeviceAgent.Storage;

/// <summary>A record waiting in the outbox for the service's receipt.</summary>
public sealed record OutboxEntry(long Sequence, string Hash, long Size, DateTimeOffset Enqueued, string Path)
{
    /// <summary>Where the record's bytes start in <see cref="Path"/> (a segment file).</summary>
    internal long Offset { get; init; }
}

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

    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);
}

/// <summary>
/// Durable on-disk queue of signed records, committed in groups. Records are appended as frames to
/// a segment file (<c>segment-NNNNNNNNNN.log</c>); one committer thread writes every record queued
/// since its last commit with one write(2) and one fsync(2), and only then acknowledges them
/// (<see cref="AddAsync"/> completes, <see cref="Add"/> returns, <see cref="Snapshot"/> lists them).
/// A busy device or a gateway for many sensors pays one fsync per group instead of one per record,
/// and a record acknowledged is on disk: the same guarantee as one crash-safe file per record.
/// <para>
/// Frame: magic <c>SVOB</c>, u32 length, i64 sequence, i64 enqueue time (Unix ms), the record's
/// SHA-256 (its identity and the frame's checksum), the COSE_Sign1 bytes; integers little-endian.
/// A crash mid-write leaves a torn tail whose hash does not match: <see cref="Open"/> truncates it
/// (those records were never acknowledged). A record leaves only when the service's receipt says
/// stored or duplicate (<see cref="Release"/>), when the service rejects it for good
/// (<see cref="Reject"/>: written to <c>rejected/</c>), or by the documented bounds. Leaving is noted
/// in the segment's <c>.acks</c> file without an fsync: a note lost in a crash only means the record
/// is sent again and the service answers with a duplicate receipt. A segment whose records have all
/// left is deleted, except the one being appended to and the one holding the newest record ever
/// committed (<see cref="Head"/>, from which the chain and the numbering continue after a crash).
/// </para>
/// </summary>
public sealed class Outbox : IDisposable
{
    private const string LegacyExtension = ".cose";
    private const string SegmentPrefix = "segment-";
    private const string SegmentExtension = ".log";
    private const string AcksExtension = ".acks";
    private const uint FrameMagic = 0x424F5653; // "SVOB" as little-endian bytes
    private const int FrameHeader = 4 + 4 + 8 + 8 + EvidenceFormat.HashLength;
    private const long SegmentLimit = 4L * 1024 * 1024;

    private readonly string _directory;
    private readonly string _rejectedDirectory;
    private readonly OutboxLimits _limits;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly SortedDictionary<long, OutboxEntry> _entries = [];
    private readonly Dictionary<string, long> _byHash = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Segment> _segments = new(StringComparer.Ordinal);
    private readonly List<Pending> _queue = [];
    private readonly HashSet<long> _queuedSequences = [];
    private readonly SemaphoreSlim _changed = new(0, int.MaxValue);
    private readonly AutoResetEvent _wake = new(false);
    private Thread? _committer;
    private Segment? _active;
    private int _nextSegmentNumber = 1;
    private bool _disposed;
    private long _bytes;
    private long _groupCommits;
    private OutboxEntry? _head;

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

    /// <summary>Group commits so far: each is one fsync(2) of a segment covering every record it acknowledged.</summary>
    public long GroupCommits => Interlocked.Read(ref _groupCommits);

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

    /// <summary>
    /// The newest record ever made durable here, even if it has left since: a segment is deleted only
    /// after a newer one holds a committed group, so this survives every crash. The pipeline's sequence
    /// state continues from it instead of writing its own file once per group.
    /// </summary>
    internal OutboxEntry? Head
    {
        get
        {
            lock (_gate)
            {
                return _head;
            }
        }
    }

    /// <summary>Test seam: runs on the committer thread before each group is written (a test holds a commit here to queue records behind it).</summary>
    internal Action? BeforeGroupWrite { get; set; }

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

        outbox.RecoverSegments();
        outbox.ImportLegacyFiles();
        return outbox;
    }

    /// <summary>
    /// The records an outbox folder holds, in sequence order with their bytes, read without changing
    /// anything (no torn tail is cut, no segment deleted): for inspecting an agent's outbox while it
    /// runs, or after it was killed.
    /// </summary>
    public static IReadOnlyList<(OutboxEntry Entry, byte[] Cose)> Inspect(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var waiting = new SortedDictionary<long, (OutboxEntry, byte[])>();
        var full = Path.GetFullPath(directory);
        foreach (var path in Directory.EnumerateFiles(full, SegmentPrefix + "*" + SegmentExtension).Order(StringComparer.Ordinal))
        {
            var left = ReadAcks(Path.ChangeExtension(path, AcksExtension));
            var bytes = File.ReadAllBytes(path);
            var offset = 0;
            while (TryParseFrame(bytes.AsSpan(offset), out var sequence, out var enqueued, out var hash, out var size))
            {
                if (!left.Contains(sequence))
                {
                    waiting[sequence] = (new OutboxEntry(sequence, hash, size, enqueued, path) { Offset = offset + FrameHeader }, bytes.AsSpan(offset + FrameHeader, size).ToArray());
                }

                offset += FrameHeader + size;
            }
        }

        foreach (var file in Directory.EnumerateFiles(full, "*" + LegacyExtension))
        {
            if (TryParseLegacyName(Path.GetFileName(file), out var sequence, out var enqueued))
            {
                var bytes = File.ReadAllBytes(file);
                waiting.TryAdd(sequence, (new OutboxEntry(sequence, Convert.ToHexStringLower(EvidenceRecord.Hash(bytes)), bytes.Length, enqueued, file), bytes));
            }
        }

        return [.. waiting.Values];
    }

    /// <summary>Adds a signed record; it is on disk (fsync'd with its group) when this returns. Applies the bounds first.</summary>
    public OutboxEntry Add(long sequence, ReadOnlySpan<byte> cose) =>
        AddAsync(sequence, cose.ToArray(), CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>
    /// Queues a signed record for the next group commit; the task completes once the fsync that
    /// covers it has returned (or faults with the I/O error, e.g. ENOSPC, and the record is not in the
    /// outbox). Once queued a record cannot be withdrawn, so <paramref name="cancellationToken"/> is
    /// only checked before queuing.
    /// </summary>
    public Task<OutboxEntry> AddAsync(long sequence, ReadOnlyMemory<byte> cose, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sequence);
        cancellationToken.ThrowIfCancellationRequested();
        var bytes = cose.ToArray();
        var pending = new Pending(sequence, bytes, Convert.ToHexStringLower(EvidenceRecord.Hash(bytes)), _time.GetUtcNow());
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_entries.ContainsKey(sequence) || !_queuedSequences.Add(sequence))
            {
                throw new InvalidOperationException($"The outbox already holds sequence {sequence}");
            }

            _queue.Add(pending);
            if (_committer is null)
            {
                _committer = new Thread(CommitLoop) { IsBackground = true, Name = "outbox group commit" };
                _committer.Start();
            }
        }

        _wake.Set();
        return pending.Done.Task;
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
        lock (_gate)
        {
            if (!_byHash.TryGetValue(entry.Hash, out var sequence) || sequence != entry.Sequence)
            {
                return null;
            }
        }

        try
        {
            return ReadFrame(entry);
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

    /// <summary>Removes the record with this hash (the service stored it). False when unknown.</summary>
    public bool Release(string hash)
    {
        lock (_gate)
        {
            if (!TryUntrack(hash, out var entry))
            {
                return false;
            }

            NoteLeft(entry);
            Released++;
        }

        return true;
    }

    /// <summary>Moves the record with this hash to <c>rejected/</c>: the service will never store it. False when unknown.</summary>
    public bool Reject(string hash)
    {
        lock (_gate)
        {
            if (!_byHash.TryGetValue(hash, out var sequence))
            {
                return false;
            }

            var entry = _entries[sequence];
            var name = string.Create(CultureInfo.InvariantCulture, $"{entry.Sequence:D19}-{entry.Enqueued.ToUnixTimeMilliseconds()}{LegacyExtension}");
            DurableFile.WriteAtomic(Path.Combine(_rejectedDirectory, name), ReadFrame(entry));
            TryUntrack(hash, out _);
            NoteLeft(entry);
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

    /// <summary>Commits what is queued, stops the committer and closes the segment files.</summary>
    public void Dispose()
    {
        Thread? committer;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            committer = _committer;
        }

        _wake.Set();
        committer?.Join();
        lock (_gate)
        {
            foreach (var segment in _segments.Values)
            {
                segment.Close();
            }
        }

        _wake.Dispose();
        _changed.Dispose();
    }

    private void CommitLoop()
    {
        var group = new List<Pending>();
        while (true)
        {
            _wake.WaitOne();
            while (true)
            {
                lock (_gate)
                {
                    if (_queue.Count == 0)
                    {
                        if (_disposed)
                        {
                            return;
                        }

                        break;
                    }

                    group.AddRange(_queue);
                    _queue.Clear();
                }

                CommitGroup(group);
                group.Clear();
            }
        }
    }

    /// <summary>One write and one fsync for the whole group; then the bounds, then the acknowledgements.</summary>
    private void CommitGroup(List<Pending> group)
    {
        Segment? segment = null;
        long start = 0;
        var offsets = new long[group.Count];
        try
        {
            BeforeGroupWrite?.Invoke();
            var length = group.Sum(p => (long)FrameHeader + p.Cose.Length);
            segment = SegmentFor(length);
            start = segment.Length;
            var buffer = new byte[length];
            var at = 0;
            for (var i = 0; i < group.Count; i++)
            {
                at += WriteFrame(buffer.AsSpan(at), group[i]);
                offsets[i] = start + at - group[i].Cose.Length;
            }

            var writer = segment.Writer!;
            writer.Position = start;
            writer.Write(buffer);
            writer.Flush(flushToDisk: true); // fsync(2): the one that covers every record of this group
            Interlocked.Increment(ref _groupCommits);
            segment.Length = start + length;
        }
#pragma warning disable CA1031 // The committer must fail the waiting records with whatever went wrong, never die with them blocked.
        catch (Exception e)
#pragma warning restore CA1031
        {
            TruncateTornTail(segment, start);
            lock (_gate)
            {
                foreach (var pending in group)
                {
                    _queuedSequences.Remove(pending.Sequence);
                }
            }

            foreach (var pending in group)
            {
                pending.Done.TrySetException(e);
            }

            return;
        }

        var entries = new OutboxEntry[group.Count];
        for (var i = 0; i < group.Count; i++)
        {
            var p = group[i];
            entries[i] = new OutboxEntry(p.Sequence, p.Hash, p.Cose.Length, p.Enqueued, segment.Path) { Offset = offsets[i] };
        }

        lock (_gate)
        {
            for (var i = 0; i < group.Count; i++)
            {
                _queuedSequences.Remove(group[i].Sequence);
                MakeRoom(group[i].Enqueued, group[i].Cose.Length);
                Track(entries[i]);
                segment.Live++;
            }

            if (_head is null || entries[^1].Sequence > _head.Sequence)
            {
                _head = entries[^1];
            }

            // Older segments with nothing left to send go only now that a newer segment holds a
            // committed group, so the head record is on disk at every moment.
            foreach (var emptied in _segments.Values.Where(s => s != segment && s.Live == 0).ToList())
            {
                Delete(emptied);
            }
        }

        for (var i = 0; i < group.Count; i++)
        {
            group[i].Done.TrySetResult(entries[i]);
        }

        _changed.Release();
    }

    /// <summary>The segment to append <paramref name="length"/> bytes to: the active one, or a new one when it is full or broken.</summary>
    private Segment SegmentFor(long length)
    {
        if (_active is { Broken: false } active && (active.Length == 0 || active.Length + length <= SegmentLimit))
        {
            return active;
        }

        var number = _nextSegmentNumber++;
        var path = Path.Combine(_directory, string.Create(CultureInfo.InvariantCulture, $"{SegmentPrefix}{number:D10}{SegmentExtension}"));
        var segment = new Segment(path, number)
        {
            Writer = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0),
        };
        DurableFile.SyncDirectory(_directory); // the new segment's name must survive a power cut with its records
        lock (_gate)
        {
            _segments[path] = segment;
            _active?.CloseWriter();
            _active = segment;
        }

        return segment;
    }

    private static void TruncateTornTail(Segment? segment, long length)
    {
        if (segment?.Writer is not { } writer)
        {
            return;
        }

        try
        {
            // ENOSPC or an I/O error: give back what the torn write took, so a retry after space
            // returns is not short of it, and later frames follow the last good one.
            writer.SetLength(length);
            writer.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            segment.Broken = true; // the next group starts a new segment; Open cuts this tail by its hash
        }
    }

    private static int WriteFrame(Span<byte> buffer, Pending pending)
    {
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(buffer, FrameMagic);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(buffer[4..], pending.Cose.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(buffer[8..], pending.Sequence);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(buffer[16..], pending.Enqueued.ToUnixTimeMilliseconds());
        Convert.FromHexString(pending.Hash).CopyTo(buffer[24..]);
        pending.Cose.CopyTo(buffer[FrameHeader..]);
        return FrameHeader + pending.Cose.Length;
    }

    private static byte[] ReadFrame(OutboxEntry entry)
    {
        using var handle = File.OpenHandle(entry.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[entry.Size];
        var read = 0;
        while (read < bytes.Length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(read), entry.Offset + read);
            if (n == 0)
            {
                throw new IOException($"{entry.Path} ends inside the record with sequence {entry.Sequence}");
            }

            read += n;
        }

        return bytes;
    }

    /// <summary>Reads every segment: frames whose hash matches and that have not left become entries; a torn tail is cut.</summary>
    private void RecoverSegments()
    {
        var found = new SortedDictionary<int, string>();
        foreach (var file in Directory.EnumerateFiles(_directory, SegmentPrefix + "*" + SegmentExtension))
        {
            var stem = Path.GetFileNameWithoutExtension(file)[SegmentPrefix.Length..];
            if (int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            {
                found[number] = file;
            }
        }

        foreach (var (number, path) in found)
        {
            var segment = new Segment(path, number);
            var left = ReadAcks(segment.AcksPath);
            var bytes = File.ReadAllBytes(path);
            var offset = 0;
            while (TryParseFrame(bytes.AsSpan(offset), out var sequence, out var enqueued, out var hash, out var size))
            {
                if (_head is null || sequence > _head.Sequence)
                {
                    _head = new OutboxEntry(sequence, hash, size, enqueued, path) { Offset = offset + FrameHeader };
                }

                if (!left.Contains(sequence) && !_entries.ContainsKey(sequence) && !_byHash.ContainsKey(hash))
                {
                    Track(new OutboxEntry(sequence, hash, size, enqueued, path) { Offset = offset + FrameHeader });
                    segment.Live++;
                }

                offset += FrameHeader + size;
            }

            if (offset < bytes.Length)
            {
                // A torn tail from a crash mid-write: never acknowledged, so nobody relies on it.
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
                stream.SetLength(offset);
                stream.Flush(flushToDisk: true);
            }

            segment.Length = offset;
            _segments[path] = segment;
            _nextSegmentNumber = number + 1;
        }

        foreach (var segment in _segments.Values.ToList())
        {
            if (segment.Live == 0 && segment.Number != _nextSegmentNumber - 1 && _head?.Path != segment.Path)
            {
                Delete(segment);
            }
        }

        if (found.Count > 0 && _segments.TryGetValue(found.Last().Value, out var last))
        {
            last.Writer = new FileStream(last.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            _active = last;
        }
    }

    /// <summary>Records written one file per record by earlier versions move into a segment (one group commit), then their files go.</summary>
    private void ImportLegacyFiles()
    {
        var imported = new List<(string Path, Task<OutboxEntry> Added)>();
        foreach (var file in Directory.EnumerateFiles(_directory, "*" + LegacyExtension).Order(StringComparer.Ordinal))
        {
            if (TryParseLegacyName(Path.GetFileName(file), out var sequence, out var enqueued))
            {
                var bytes = File.ReadAllBytes(file);
                var pending = new Pending(sequence, bytes, Convert.ToHexStringLower(EvidenceRecord.Hash(bytes)), enqueued);
                if (_entries.ContainsKey(sequence) || !_queuedSequences.Add(sequence))
                {
                    imported.Add((file, Task.FromResult<OutboxEntry>(null!)));
                    continue;
                }

                _queue.Add(pending);
                imported.Add((file, pending.Done.Task));
            }
        }

        if (imported.Count == 0)
        {
            return;
        }

        var group = new List<Pending>(_queue);
        _queue.Clear();
        CommitGroup(group);
        foreach (var (file, added) in imported)
        {
            added.GetAwaiter().GetResult();
            File.Delete(file);
        }

        DurableFile.SyncDirectory(_directory);
    }

    private static HashSet<long> ReadAcks(string path)
    {
        var left = new HashSet<long>();
        if (!File.Exists(path))
        {
            return left;
        }

        var bytes = File.ReadAllBytes(path);
        for (var i = 0; i + 8 <= bytes.Length; i += 8)
        {
            left.Add(System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i)));
        }

        return left;
    }

    private static bool TryParseFrame(ReadOnlySpan<byte> bytes, out long sequence, out DateTimeOffset enqueued, out string hash, out int size)
    {
        sequence = 0;
        enqueued = default;
        hash = string.Empty;
        size = 0;
        if (bytes.Length < FrameHeader || System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes) != FrameMagic)
        {
            return false;
        }

        size = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(bytes[4..]);
        sequence = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes[8..]);
        var ms = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(bytes[16..]);
        if (size < 0 || size > bytes.Length - FrameHeader || sequence < 0 || ms is < 0 or > 253_402_300_799_999)
        {
            return false;
        }

        var stored = bytes.Slice(24, EvidenceFormat.HashLength);
        if (!stored.SequenceEqual(EvidenceRecord.Hash(bytes.Slice(FrameHeader, size))))
        {
            return false;
        }

        enqueued = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        hash = Convert.ToHexStringLower(stored);
        return true;
    }

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
            NoteLeft(oldest);
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

    /// <summary>Under the gate: the record has left; its segment goes when nothing in it is left to send.</summary>
    private void NoteLeft(OutboxEntry entry)
    {
        if (!_segments.TryGetValue(entry.Path, out var segment))
        {
            return;
        }

        segment.Live--;
        if (segment.Live == 0 && segment != _active && _head?.Path != segment.Path)
        {
            Delete(segment);
            return;
        }

        try
        {
            segment.Acks ??= new FileStream(segment.AcksPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            Span<byte> note = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(note, entry.Sequence);
            segment.Acks.Write(note);
        }
        catch (IOException)
        {
            // Not noted (e.g. a full disk): after a crash the record is sent again and answered as a duplicate.
        }
    }

    private void Delete(Segment segment)
    {
        segment.Close();
        File.Delete(segment.Path);
        File.Delete(segment.AcksPath);
        _segments.Remove(segment.Path);
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

    private static bool TryParseLegacyName(string name, out long sequence, out DateTimeOffset enqueued)
    {
        sequence = 0;
        enqueued = default;
        var stem = name.AsSpan(0, name.Length - LegacyExtension.Length);
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

    private sealed record Pending(long Sequence, byte[] Cose, string Hash, DateTimeOffset Enqueued)
    {
        public TaskCompletionSource<OutboxEntry> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Segment(string path, int number)
    {
        public string Path { get; } = path;

        public string AcksPath { get; } = System.IO.Path.ChangeExtension(path, AcksExtension);

        public int Number { get; } = number;

        /// <summary>Bytes of whole, fsync'd frames.</summary>
        public long Length { get; set; }

        /// <summary>Records in this segment that have not left.</summary>
        public int Live { get; set; }

        public bool Broken { get; set; }

        public FileStream? Writer { get; set; }

        public FileStream? Acks { get; set; }

        public void CloseWriter()
        {
            Writer?.Dispose();
            Writer = null;
        }

        public void Close()
        {
            CloseWriter();
            Acks?.Dispose();
            Acks = null;
        }
    }
}
