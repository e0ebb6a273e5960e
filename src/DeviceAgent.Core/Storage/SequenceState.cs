using System.Text.Json;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace DeviceAgent.Storage;

/// <summary>
/// The device's sequence counter and hash chain, in <c>state.json</c> of the data folder.
/// A sequence number is persisted (fsync) as used before any record carries it, so a restart or a
/// power cut can skip numbers but never reuse one. After a record is safely in the outbox its hash
/// becomes the chain's previous hash, persisted the same way.
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

        if (outbox?.Newest is { } newest && newest.Sequence > state._last && newest.Sequence < state._next)
        {
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

    private void Persist()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("next", _next);
            json.WriteNumber("last", _last);
            json.WriteString("prev", Convert.ToHexStringLower(_previousHash));
            json.WriteEndObject();
        }

        DurableFile.WriteAtomic(_path, buffer.ToArray());
    }
}
