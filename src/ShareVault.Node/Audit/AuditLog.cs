using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;

namespace ShareVault.Node.Audit;

/// <summary>
/// The node's append-only, hash-chained audit log (<c>DATA_DIR/audit.jsonl</c>): one JSON line per
/// request it signed or refused, each with <c>seq</c>, <c>time</c>, <c>prev</c> (the previous line's
/// hash, 64 zeros for the first) and <c>hash</c> = SHA-256 over the RFC 8785 canonical JSON of the
/// line without <c>hash</c>. Each line is fsynced before the request is answered. It records the
/// request (key, kid, purpose, pool, claim id, SHA-256 of the signing input — never the payload
/// itself), the outcome and the coordinator's client-certificate thumbprint.
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const string FileName = "audit.jsonl";

    // Kids such as "pool-1/a+b" stay readable; the hash is over the canonical form, not these bytes.
    private static readonly System.Text.Json.JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly FileStream _file;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private long _sequence;
    private string _previous;

    private AuditLog(FileStream file, TimeProvider time, long sequence, string previous)
    {
        _file = file;
        _time = time;
        _sequence = sequence;
        _previous = previous;
    }

    public string Path => _file.Name;

    /// <summary>
    /// Opens (or creates) the log and checks its chain; a torn last line (a power cut mid-append: no
    /// final newline) is cut off. A broken chain refuses to open: a node must not keep appending to a
    /// log someone rewrote.
    /// </summary>
    public static AuditLog Open(string dataDir, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        DurableFile.CreateDirectory(dataDir);
        var path = System.IO.Path.Combine(dataDir, FileName);
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            var bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            var text = Encoding.UTF8.GetString(bytes);
            var complete = text.LastIndexOf('\n') + 1;
            if (complete < text.Length)
            {
                file.SetLength(Encoding.UTF8.GetByteCount(text[..complete]));
                file.Flush(flushToDisk: true);
            }

            var check = Verify(text[..complete]);
            if (check.BrokenLine is { } broken)
            {
                throw new InvalidDataException($"Audit log {path} is broken at line {broken}: {check.Reason}");
            }

            file.Seek(0, SeekOrigin.End);
            return new AuditLog(file, time, check.Lines, check.LastHash);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Appends one line (seq, time, prev and hash added here) and fsyncs it; returns the line.</summary>
    public JsonObject Append(JsonObject entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_gate)
        {
            var line = new JsonObject
            {
                ["seq"] = _sequence + 1,
                ["time"] = LedgerEntry.FormatTime(_time.GetUtcNow()),
                ["prev"] = _previous,
            };
            foreach (var (name, value) in entry)
            {
                line[name] = value?.DeepClone();
            }

            line["hash"] = Hash(line);
            _file.Write(Encoding.UTF8.GetBytes(line.ToJsonString(Readable) + "\n"));
            _file.Flush(flushToDisk: true);
            _sequence++;
            _previous = line["hash"]!.GetValue<string>();
            return line;
        }
    }

    /// <summary>SHA-256 (hex) over the canonical JSON of the line without its <c>hash</c> member.</summary>
    public static string Hash(JsonObject line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var copy = line.DeepClone().AsObject();
        copy.Remove("hash");
        return Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(copy)));
    }

    /// <summary>What checking a log's chain found: the number of good lines, the last hash, and the first broken line (1-based) with why.</summary>
    public sealed record Check(long Lines, string LastHash, long? BrokenLine, string? Reason);

    /// <summary>Checks every line: valid JSON object, seq = line number, prev = previous hash, hash recomputed.</summary>
    public static Check Verify(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var previous = LedgerEntry.Genesis;
        long number = 0;
        foreach (var raw in text.Split('\n'))
        {
            if (raw.Length == 0)
            {
                continue;
            }

            number++;
            JsonObject? line;
            try
            {
                line = JsonNode.Parse(raw) as JsonObject;
            }
            catch (System.Text.Json.JsonException)
            {
                line = null;
            }

            string? Broken()
            {
                if (line is null)
                {
                    return "not a JSON object";
                }

                if (line["seq"] is not JsonValue seq || !seq.TryGetValue<long>(out var s) || s != number)
                {
                    return string.Create(CultureInfo.InvariantCulture, $"seq is not {number}");
                }

                if (line["prev"] is not JsonValue prev || prev.ToString() != previous)
                {
                    return "prev is not the previous line's hash";
                }

                if (line["hash"] is not JsonValue hash || hash.ToString() != Hash(line))
                {
                    return "hash does not match the line's content";
                }

                return null;
            }

            if (Broken() is { } reason)
            {
                return new Check(number - 1, previous, number, reason);
            }

            previous = line!["hash"]!.ToString();
        }

        return new Check(number, previous, null, null);
    }

    public void Dispose() => _file.Dispose();
}
