using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Node.Guard;

namespace ShareVault.Node.Tests.Guard;

/// <summary>
/// A real claims engine on SQLite whose pool key (real, SoftHSM) signs only what an in-process guard
/// allows, as a custody node would: the coordinator side of the guard tests. Also keeps every
/// signing request it saw, so a test can replay or tamper with one as a malicious coordinator.
/// </summary>
internal sealed class GuardedPool : IAsyncDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 6, 0, 0, TimeSpan.Zero);

    private readonly ClaimsDatabase _db;

    private GuardedPool(PoolKeyFixture key, bool recordAdminKeys, long maxPerPayout, long maxPerDay)
    {
        Key = key;
        DataDir = Path.Combine(key.DataDir, "node-" + Guid.NewGuid().ToString("N")[..10]);
        AdminKey = AdminKey.FromSubjectPublicKeyInfo(Admin.ExportSubjectPublicKeyInfo());
        Options = new GuardOptions(DataDir, [AdminKey], maxPerPayout, maxPerDay, false, Clock);
        Guard = new SigningGuard(Options);
        Signer = new GuardedSigner(key.Signer(), this);
        _db = ClaimsDatabase.Open(key.NewDatabasePath());
        Engine = new ClaimsEngine(_db, Signer, Clock);
        RecordsAdminKeys = recordAdminKeys;
    }

    public PoolKeyFixture Key { get; }

    public string DataDir { get; }

    /// <summary>The pool administrator's key: not the coordinator's (here a software key for speed; the CLI tests use a token).</summary>
    public ECDsa Admin { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public AdminKey AdminKey { get; }

    public GuardOptions Options { get; }

    public SigningGuard Guard { get; private set; }

    public GuardedSigner Signer { get; }

    public ClaimsEngine Engine { get; }

    public ManualClock Clock { get; } = new(Start.AddHours(1));

    public bool RecordsAdminKeys { get; }

    public SimulatedDevice Device { get; } = new("dev-1");

    public string Pool { get; } = "pool-1";

    /// <summary>
    /// A pool (admin-signed, its admin key recorded unless <paramref name="recordAdminKeys"/> is
    /// false), members alice and bob, alice's flood policy (25 000, admin-signed unless
    /// <paramref name="signPolicy"/> is false), a premium of 100 000 (admin-signed) and alice's device dev-1 (admin-signed).
    /// </summary>
    public static async Task<GuardedPool> CreateAsync(PoolKeyFixture key, bool recordAdminKeys = true, bool signPolicy = true, long maxPerPayout = 40_000, long maxPerDay = 100_000)
    {
        var pool = new GuardedPool(key, recordAdminKeys, maxPerPayout, maxPerDay);
        var e = pool.Engine;
        var admins = recordAdminKeys ? new[] { pool.AdminKey } : [];
        await e.CreatePoolAsync(pool.Pool, "Riverside homes", "EUR", key.KeyName, 50_000, admins,
            pool.Sign(LedgerEntry.PoolCreated, e.PoolBody(pool.Pool, "Riverside homes", "EUR", key.KeyName, 50_000, admins)), default);
        await e.AddMemberAsync(pool.Pool, "alice", "Alice", default);
        await e.AddMemberAsync(pool.Pool, "bob", "Bob", default);
        var policyBody = ClaimsEngine.PolicyBody("pol-flood", "alice", "water_leak == 1 for 10m", 25_000, 0, null);
        await e.IssuePolicyAsync(pool.Pool, "alice", "pol-flood", "water_leak == 1 for 10m", 25_000, 0, null,
            signPolicy ? pool.Sign(LedgerEntry.PolicyIssued, policyBody) : null, default);
        await e.RecordPremiumAsync(pool.Pool, "alice", 100_000, "pay-alice-1", pool.Sign(LedgerEntry.Premium, RegistryChange.Premium("alice", 100_000, "pay-alice-1")), default);
        await e.EnrollDeviceAsync(pool.Pool, "alice", "dev-1", pool.Device.PublicKey,
            pool.Sign(LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled("dev-1", "alice", pool.Device.PublicKey)), default);
        return pool;
    }

    public JsonObject Sign(string kind, JsonObject body) => AdminSignature.Sign(Admin, Pool, kind, body);

    /// <summary>A premium signed by the pool administrator, as a node requires.</summary>
    public Task PremiumAsync(string member, long amount, string reference) =>
        Engine.RecordPremiumAsync(Pool, member, amount, reference, Sign(LedgerEntry.Premium, RegistryChange.Premium(member, amount, reference)), default);

    /// <summary>Real COSE_Sign1 records of the device, verified as the ingest pipeline does, stored by the engine.</summary>
    public async Task<List<byte[]>> StoreAsync(List<byte[]> records)
    {
        await Engine.StoreAsync([.. records.Select(ToVerified)], default);
        return records;
    }

    /// <summary>A flood: dry for two minutes, then wet for twelve.</summary>
    public Task<List<byte[]>> FloodAsync() => StoreAsync(Device.Leak(Start, wetMinutes: 12));

    public VerifiedRecord ToVerified(byte[] cose)
    {
        var v = EvidenceVerifier.Verify(cose, id => id == Device.Id ? Device.Key : null);
        Assert.True(v.IsValid, v.Detail);
        var r = v.Record!;
        return new VerifiedRecord(r.DeviceId, r.Sequence, r.Time, v.Hash, cose, r.Readings, r.IsChainStart, r.PreviousHash.ToArray());
    }

    /// <summary>The first kid of the pool's JWKS: the quorum the tests' requests name.</summary>
    public string Kid => Engine.Signer.Jwks(Key.KeyName)["keys"]![0]!["kid"]!.GetValue<string>();

    /// <summary>What a node receives for a signing request: the JWS signing input, the justification and the ledger after the node's head.</summary>
    public GuardRequest ToGuardRequest(PoolSigningRequest request, long? after = null) =>
        new(request.KeyName, Kid, Encoding.ASCII.GetBytes(Jws.SigningInput(Kid, request.Payload)), request.Justification.DeepClone().AsObject(),
            request.LedgerAfter(after ?? Guard.Head(request.PoolId).Sequence));

    /// <summary>A guard request over a payload of the test's choosing.</summary>
    public GuardRequest Request(byte[] payload, JsonObject? justification, JsonArray? ledger) =>
        new(Key.KeyName, Kid, Encoding.ASCII.GetBytes(Jws.SigningInput(Kid, payload)), justification, ledger);

    /// <summary>The engine's ledger as a node would receive it, from entry <paramref name="after"/> + 1.</summary>
    public JsonArray LedgerAfter(long after) => new([.. Engine.LedgerEntries(Pool).Where(e => e.Sequence > after).Select(e => (JsonNode)e.ToJson())]);

    /// <summary>A node restarted on the same data folder.</summary>
    public void RestartGuard()
    {
        Guard.Dispose();
        Guard = new SigningGuard(Options);
    }

    public async ValueTask DisposeAsync()
    {
        Guard.Dispose();
        Engine.Dispose();
        _db.Dispose();
        await Device.DisposeAsync();
        Admin.Dispose();
    }

    /// <summary>The pool signer: asks the guard first, signs with the real threshold key only when it allows, then tells the guard.</summary>
    internal sealed class GuardedSigner(IPoolSigner inner, GuardedPool pool) : IPoolSigner
    {
        public List<PoolSigningRequest> Requests { get; } = [];

        public List<GuardDecision> Decisions { get; } = [];

        public async Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            var guarded = pool.ToGuardRequest(request);
            var decision = pool.Guard.Check(guarded);
            Decisions.Add(decision);
            if (!decision.Allowed)
            {
                throw new ClaimsException(ClaimsError.SigningUnavailable, $"the node refused: {decision.Refusal} ({decision.Detail})");
            }

            var signed = await inner.SignAsync(request, cancellationToken);
            pool.Guard.Signed(guarded);
            return signed;
        }

        public JsonObject Jwks(string keyName) => inner.Jwks(keyName);

        public bool Exists(string keyName) => inner.Exists(keyName);
    }
}
