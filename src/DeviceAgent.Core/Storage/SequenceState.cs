using System.Text.Json;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace DeviceAgent.Storage;

/// <summary>
/// The device's sequence counter and hash chain, in <c>state.json</c> of the data folder.
/// A sequence number is persisted (fsync) as used before any record carries it, so a restart or a
/// power cut can skip numbers but never reuse one. After a record is safely in the outbox its hash
/// becomes the chain's previous hash, persisted the same way.
/// <para>
/// The pipeline takes the cheaper path that the outbox's group commit allows (<see cref="Take"/>,
/// <see cref="Advance"/>): numbers are taken and the chain advanced in memory, and no state file is
/// written per record. Every record is acknowledged only after the fsync that puts it in the outbox,
/// and the outbox keeps its newest committed record on disk even after it was delivered
/// (<see cref="Outbox.Head"/>), so <see cref="Open"/> continues the chain and the numbering from it.
/// A number taken by a record that never reached its fsync may be taken again after a crash, which is
/// harmless: nobody ever saw that record (delivery reads only acknowledged records). The file is
/// written when the pipeline is disposed (<see cref="PersistDurable"/>).
/// </para>
/// </summary>
public sealed class SequenceState
{
    private const string FileName = "state.json";
    private readonly string _path;
    private readonly Lock _gate = new();
    private long _next;
    private long _last;
    private byte[] _previousHash;

    private SequenceState(string path, long next, long last, byte[] previousHash)
    {
        _path = path;
        _next = next;
        _last = last;
        _previousHash = previousHash;
    }

    /// <summary>The next sequence number that will be reserved.</summary>
    public long NextSequence
    {
        get
        {
            lock (_gate)
            {
                return _next;
            }
        }
    }

    /// <summary>Sequence number of the last record committed to the chain (0 when none).</summary>
    public long LastSequence
    {
        get
        {
            lock (_gate)
            {
                return _last;
            }
        }
    }

    /// <summary>SHA-256 of the last committed record; empty before the first.</summary>
    public ReadOnlyMemory<byte> PreviousHash
    {
        get
        {
            lock (_gate)
            {
                return _previousHash;
            }
        }
    }

    /// <summary>
    /// Opens (or starts) the state in <paramref name="dataDir"/>. When <paramref name="outbox"/>
    /// holds a record newer than the committed chain head (power cut between enqueueing it and
    /// committing its hash), the chain continues from that record.
    /// </summary>
    public static SequenceState Open(string dataDir, Outbox? outbox = null)
    {
        Directory.CreateDirectory(dataDir);
        var path = Path.Combine(dataDir, FileName);
        SequenceState state;
        if (File.Exists(path))
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            state = new SequenceState(
                path,
                root.GetProperty("next").GetInt64(),
                root.GetProperty("last").GetInt64(),
                Convert.FromHexString(root.GetProperty("prev").GetString() ?? string.Empty));
            if (state._next < 1 || state._last >= state._next || state._previousHash.Length is not (0 or EvidenceFormat.HashLength))
            {
                throw new InvalidDataException($"{path} is inconsistent (next {state._next}, last {state._last}); refusing to guess a sequence number");
            }
        }
        else
        {
            state = new SequenceState(path, 1, 0, []);
            state.Persist();
        }

        if (outbox?.Head is { } newest && newest.Sequence > state._last)
        {
            // Records committed in groups after the state file was last written: continue the chain
            // (and the numbering) from the newest one.
            state._next = Math.Max(state._next, checked(newest.Sequence + 1));
            state.Commit(newest.Sequence, Convert.FromHexString(newest.Hash));
        }

        return state;
    }

    /// <summary>Takes the next sequence number; it is on disk before this returns.</summary>
    public long Reserve()
    {
        lock (_gate)
        {
            var sequence = _next;
            _next = checked(sequence + 1);
            Persist();
            return sequence;
        }
    }

    /// <summary>Makes <paramref name="hash"/> (of the record with <paramref name="sequence"/>) the chain head.</summary>
    public void Commit(long sequence, byte[] hash)
    {
        ArgumentNullException.ThrowIfNull(hash);
        if (hash.Length != EvidenceFormat.HashLength)
        {
            throw new ArgumentException("A record hash is 32 bytes", nameof(hash));
        }

        lock (_gate)
        {
            if (sequence <= _last || sequence >= _next)
            {
                throw new InvalidOperationException($"Sequence {sequence} cannot follow {_last} (next is {_next})");
            }

            _last = sequence;
            _previousHash = hash;
            Persist();
        }
    }

    /// <summary>Takes the next sequence number in memory; <see cref="PersistDurable"/> writes it with the group that carries it.</summary>
    internal long Take()
    {
        lock (_gate)
        {
            var sequence = _next;
            _next = checked(sequence + 1);
            return sequence;
        }
    }

    /// <summary>Moves the chain head in memory to a record just signed, so the next record can name it as previous.</summary>
    internal void Advance(long sequence, byte[] hash)
    {
        lock (_gate)
        {
            _last = sequence;
            _previousHash = hash;
        }
    }

    /// <summary>
    /// Writes the state with the chain head at the newest durable record (<paramref name="sequence"/>,
    /// <paramref name="hash"/>) and the next number as taken so far in memory.
    /// </summary>
    internal void PersistDurable(long sequence, byte[] hash)
    {
        lock (_gate)
        {
            Write(_next, sequence, hash);
        }
    }

    private void Persist() => Write(_next, _last, _previousHash);

    private void Write(long next, long last, byte[] previousHash)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("next", next);
            json.WriteNumber("last", last);
            json.WriteString("prev", Convert.ToHexStringLower(previousHash));
            json.WriteEndObject();
        }

        DurableFile.WriteAtomic(_path, buffer.ToArray());
    }
}
