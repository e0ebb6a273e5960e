using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;

namespace ShareVault.Node.Guard;

/// <summary>
/// One pool's verified replica on the node: the registry folded from every entry the node accepted
/// (<see cref="PoolRegistry"/>), their hashes, and what this node signed for the pool. On disk under
/// <c>DataDir/replica/POOL/</c>: <c>entries.jsonl</c> (one accepted entry per line, appended and
/// fsync'd before the decision that follows it) and <c>signed.json</c> (claims this node signed with
/// the SHA-256 of the instruction, its per-UTC-day totals, and the treasury payout messages it signed
/// per claim; replaced atomically). A restart
/// re-folds the entries, so it resumes at the same head with every check run again.
/// </summary>
internal sealed class PoolReplica
{
    private readonly string _dir;
    private readonly List<string> _hashes = [];
    private readonly Dictionary<string, string> _signedClaims = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _dayTotals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _signedSettlements = new(StringComparer.Ordinal);

    private PoolReplica(string dir, PoolRegistry registry)
    {
        _dir = dir;
        Registry = registry;
    }

    public PoolRegistry Registry { get; private set; }

    /// <summary>Entry hashes by sequence number − 1.</summary>
    public IReadOnlyList<string> Hashes => _hashes;

    public LedgerHead Head => new(Registry.Sequence, Registry.Head);

    /// <summary>Loads (or starts) the replica in <paramref name="dir"/>; entries that no longer fold (a torn last line, an admin key removed from the configuration) are dropped from the file.</summary>
    public static PoolReplica Load(string dir, string poolId, IReadOnlyList<AdminKey> admins)
    {
        var replica = new PoolReplica(dir, new PoolRegistry(poolId, admins));
        var path = Path.Combine(dir, "entries.jsonl");
        if (File.Exists(path))
        {
            var kept = 0;
            var lines = File.ReadAllLines(path);
            foreach (var line in lines)
            {
                JsonNode? json;
                try
                {
                    json = JsonNode.Parse(line);
                }
                catch (System.Text.Json.JsonException)
                {
                    break; // torn by a power cut mid-append: the decision after it never happened
                }

                if (!PoolRegistry.TryRead(poolId, json, out var entry, out _) || !replica.Registry.Apply(entry!).Applied)
                {
                    break;
                }

                replica._hashes.Add(entry!.Hash);
                kept++;
            }

            if (kept < lines.Length)
            {
                DurableFile.WriteAtomic(path, Encoding.UTF8.GetBytes(string.Concat(lines.Take(kept).Select(l => l + "\n"))));
            }
        }

        var signed = Path.Combine(dir, "signed.json");
        if (File.Exists(signed) && JsonNode.Parse(File.ReadAllBytes(signed)) is JsonObject state)
        {
            foreach (var (claim, hash) in state["claims"]?.AsObject() ?? [])
            {
                replica._signedClaims[claim] = hash!.GetValue<string>();
            }

            foreach (var (day, total) in state["days"]?.AsObject() ?? [])
            {
                replica._dayTotals[day] = total!.GetValue<long>();
            }

            foreach (var (claim, hash) in state["settlements"]?.AsObject() ?? [])
            {
                replica._signedSettlements[claim] = hash!.GetValue<string>();
            }
        }

        return replica;
    }

    /// <summary>Makes <paramref name="next"/> (a clone that applied <paramref name="appended"/>) the replica, after the entries are on disk.</summary>
    public void Commit(PoolRegistry next, IReadOnlyList<LedgerEntry> appended)
    {
        if (appended.Count > 0)
        {
            DurableFile.CreateDirectory(_dir);
            var path = Path.Combine(_dir, "entries.jsonl");
            var existed = File.Exists(path);
            var text = new StringBuilder();
            foreach (var entry in appended)
            {
                text.Append(entry.ToJson().ToJsonString()).Append('\n');
            }

            using (var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read))
            {
                stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
                stream.Flush(flushToDisk: true);
            }

            if (!existed)
            {
                DurableFile.SyncDirectory(_dir);
            }

            _hashes.AddRange(appended.Select(e => e.Hash));
        }

        Registry = next;
    }

    /// <summary>The SHA-256 (hex) of the instruction this node signed for the claim, or null.</summary>
    public string? SignedInstruction(string claimId) => _signedClaims.GetValueOrDefault(claimId);

    public long DayTotal(DateTimeOffset now) => _dayTotals.GetValueOrDefault(Day(now));

    /// <summary>Remembers a signed payout (once per claim) and adds its amount to the day's total; persisted before returning.</summary>
    public void RecordSigned(string claimId, string instructionSha256, long amount, DateTimeOffset now)
    {
        if (_signedClaims.ContainsKey(claimId))
        {
            return; // the same instruction signed again (a coordinator retrying after a crash): one payout
        }

        _signedClaims[claimId] = instructionSha256;
        var day = Day(now);
        _dayTotals[day] = _dayTotals.GetValueOrDefault(day) + amount;
        Save();
    }

    /// <summary>The SHA-256 (hex) of the treasury payout message this node signed for the claim, or null.</summary>
    public string? SignedSettlement(string claimId) => _signedSettlements.GetValueOrDefault(claimId);

    /// <summary>Remembers a signed treasury payout message (once per claim: the same message again is a retry); persisted before returning.</summary>
    public void RecordSettlement(string claimId, string messageSha256)
    {
        if (_signedSettlements.TryAdd(claimId, messageSha256))
        {
            Save();
        }
    }

    private void Save()
    {
        var claims = new JsonObject();
        foreach (var (claim, hash) in _signedClaims.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            claims[claim] = hash;
        }

        var days = new JsonObject();
        foreach (var (d, total) in _dayTotals.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            days[d] = total;
        }

        var settlements = new JsonObject();
        foreach (var (claim, hash) in _signedSettlements.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            settlements[claim] = hash;
        }

        DurableFile.CreateDirectory(_dir);
        DurableFile.WriteAtomic(Path.Combine(_dir, "signed.json"), Encoding.UTF8.GetBytes(new JsonObject { ["claims"] = claims, ["days"] = days, ["settlements"] = settlements }.ToJsonString()));
    }

    private static string Day(DateTimeOffset now) => now.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
