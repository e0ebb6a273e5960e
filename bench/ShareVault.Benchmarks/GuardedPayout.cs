using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Signing;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Service;

namespace ShareVault.Benchmarks;

/// <summary>
/// A payout request as the claims engine makes it, for the nodes benchmark: a real engine on SQLite,
/// an admin-signed pool, policy (<c>water_leak == 1 for 10m</c>) and device, a flood of 15 signed
/// COSE records, an approved claim. <see cref="SignAsync"/> asks the nodes for the same instruction
/// each time (a coordinator re-asking after a crash, which a node allows): every request runs the
/// node's whole payout guard (ledger head, registry, amounts, every record's ES256 signature, the
/// trigger recomputed) before the hardware.
/// </summary>
internal sealed class GuardedPayout : IDisposable
{
    private const string Pool = "bench-pool";

    private readonly ClaimsDatabase _db;
    private readonly ClaimsEngine _engine;
    private readonly ThresholdSigner _signer;
    private readonly KeyRecord _key;
    private byte[] _payload = [];
    private SigningContext? _context;

    private GuardedPayout(ClaimsDatabase db, ClaimsEngine engine, ThresholdSigner signer, KeyRecord key)
    {
        _db = db;
        _engine = engine;
        _signer = signer;
        _key = key;
    }

    public static async Task<GuardedPayout> CreateAsync(string dir, ECDsa admin, KeyRecord key, KeyCatalog catalog, ThresholdSigner signer)
    {
        var db = ClaimsDatabase.Open(Path.Combine(dir, "claims.db"));
        var engine = new ClaimsEngine(db, new ThresholdPoolSigner(catalog, signer), TimeProvider.System);
        var payout = new GuardedPayout(db, engine, signer, key);
        await payout.PrepareAsync(admin);
        return payout;
    }

    private async Task PrepareAsync(ECDsa admin)
    {
        JsonObject Sign(string kind, JsonObject body) => AdminSignature.Sign(admin, Pool, kind, body);
        var e = _engine;
        AdminKey[] admins = [AdminKey.FromSubjectPublicKeyInfo(admin.ExportSubjectPublicKeyInfo())];
        await e.CreatePoolAsync(Pool, "Bench homes", "EUR", _key.Name, 50_000, admins, Sign(LedgerEntry.PoolCreated, e.PoolBody(Pool, "Bench homes", "EUR", _key.Name, 50_000, admins)), default);
        await e.AddMemberAsync(Pool, "alice", "Alice", default);
        const string rule = "water_leak == 1 for 10m";
        await e.IssuePolicyAsync(Pool, "alice", "flood", rule, 25_000, 0, null, Sign(LedgerEntry.PolicyIssued, ClaimsEngine.PolicyBody("flood", "alice", rule, 25_000, 0, null)), default);
        await e.RecordPremiumAsync(Pool, "alice", 100_000, "bench-premium", Sign(LedgerEntry.Premium, RegistryChange.Premium("alice", 100_000, "bench-premium")), default);

        using var device = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var spki = device.ExportSubjectPublicKeyInfo();
        await e.EnrollDeviceAsync(Pool, "alice", "bench-dev", spki, Sign(LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled("bench-dev", "alice", spki)), default);

        // Dry for two minutes, wet for twelve, dry again: one record a minute, ending a few minutes ago.
        var start = DateTimeOffset.FromUnixTimeSeconds(TimeProvider.System.GetUtcNow().ToUnixTimeSeconds() / 60 * 60).AddMinutes(-20);
        var previous = Array.Empty<byte>();
        var records = new List<VerifiedRecord>();
        for (var i = 0; i < 15; i++)
        {
            var time = start.AddMinutes(i);
            var cose = EvidenceSigner.Sign(new EvidenceRecord("bench-dev", i, time, previous, [new Reading("water_leak", null, i is >= 2 and < 14 ? 1 : 0, time)]), device);
            previous = EvidenceRecord.Hash(cose);
            var v = EvidenceVerifier.Verify(cose, _ => device);
            var r = v.Record ?? throw new InvalidOperationException(v.Detail);
            records.Add(new VerifiedRecord(r.DeviceId, r.Sequence, r.Time, v.Hash, cose, r.Readings, r.IsChainStart, r.PreviousHash.ToArray()));
        }

        await e.StoreAsync(records, default);
        var claim = e.ListClaims(Pool).SingleOrDefault(c => c.Status == "approved") ?? throw new InvalidOperationException("the flood opened no approved claim");
        var first = claim.Evidence[0]!["seq"]!.GetValue<long>();
        var last = claim.Evidence[^1]!["seq"]!.GetValue<long>();
        var justification = new JsonObject
        {
            ["pool"] = Pool,
            ["purpose"] = PoolSigningRequest.PayoutPurpose,
            ["evidence"] = new JsonArray([.. e.Evidence("bench-dev", first - 1, (int)(last - first + 2)).Select(r => (JsonNode)new JsonObject
            {
                ["device"] = "bench-dev", ["seq"] = r.Sequence, ["cose"] = Base64Url.Encode(r.Cose),
            })]),
            ["device_keys"] = new JsonObject { ["bench-dev"] = LedgerExport.PublicKeyPem(spki) },
        };
        _payload = PayoutInstruction.Payload(claim, "EUR");
        _context = new SigningContext(justification, after => new JsonArray([.. e.LedgerEntries(Pool).Where(x => x.Sequence > after).Select(x => (JsonNode)x.ToJson())]));
    }

    /// <summary>The claim's payout instruction, signed 2-of-3 through the nodes after each node's guard allowed it.</summary>
    public Task SignAsync() => _signer.SignJwsAsync(_key, _payload, null, _context, CancellationToken.None);

    public void Dispose()
    {
        _engine.Dispose();
        _db.Dispose();
    }
}
