using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Signing;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Service;

namespace ShareVault.Node.Tests.Server;

/// <summary>
/// Three guarded nodes (<c>--admin-key</c>, no raw signing) and, in this process, the coordinator of
/// production: a real <see cref="ClaimsEngine"/> on SQLite whose <see cref="Claims.Payouts.IPoolSigner"/>
/// is the real <see cref="ThresholdPoolSigner"/> over node custodian URIs, with one 2-of-3 pool key
/// born in the nodes' hardware. One key and one engine per class; each test makes a pool of its own
/// (pools are ledger entities: each has its own replica on every node), so tests do not depend on
/// each other's order. <see cref="Signer"/> is the same client path, for requests the engine would
/// never make.
/// </summary>
public class GuardedNodes : NodeNetwork
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 6, 0, 0, TimeSpan.Zero);

    public const string FloodRule = "water_leak == 1 for 10m";

    public const long PolicyAmount = 25_000;

    private readonly List<TestPool> _pools = [];
    private ClaimsDatabase? _db;
    private ClaimsEngine? _engine;

    public GuardedNodes()
        : this("node-g", "node-h", "node-v")
    {
    }

    /// <summary>A guarded network on other tokens (a class of its own, whose replicas and audit logs are asserted on).</summary>
    protected GuardedNodes(string tokenA, string tokenB, string tpmObject)
        : this(tokenA, tokenB, tpmObject, ECDsa.Create(ECCurve.NamedCurves.nistP256))
    {
    }

    private GuardedNodes(string tokenA, string tokenB, string tpmObject, ECDsa admin)
        : base(tokenA, tokenB, tpmObject, admin.ExportSubjectPublicKeyInfoPem())
    {
        Admin = admin;
        AdminKey = AdminKey.FromSubjectPublicKeyInfo(admin.ExportSubjectPublicKeyInfo());
    }

    /// <summary>The pool administrator's key (a software key, as in the guard tests): the nodes trust its public half, the engine records it.</summary>
    public ECDsa Admin { get; }

    public AdminKey AdminKey { get; }

    public ManualClock Clock { get; } = new(Start.AddHours(1));

    public KeyRecord Key { get; private set; } = null!;

    public ShareStoreRegistry Stores { get; private set; } = null!;

    /// <summary>The threshold signer the engine's pool signer uses, on the same stores (the same mTLS clients).</summary>
    public ThresholdSigner Signer { get; private set; } = null!;

    public ClaimsEngine Engine => _engine!;

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        Key = CreateKey("guarded-" + Guid.NewGuid().ToString("N")[..8]);
        Stores = CustodianStores.Open(CoordinatorDir);
        Signer = new ThresholdSigner(Stores);
        _db = ClaimsDatabase.Open(Path.Combine(Root, "claims", "claims.db"));
        _engine = new ClaimsEngine(_db, new ThresholdPoolSigner(new KeyCatalog(CoordinatorDir), Signer), Clock);
    }

    /// <summary>
    /// A pool of its own for one test (admin-signed, the admin key recorded unless
    /// <paramref name="lax"/>: then the engine checks no admin signature, as a compromised coordinator
    /// would not), members alice and bob, alice's flood policy for <see cref="PolicyAmount"/> (admin-signed),
    /// a premium of <paramref name="premium"/> and alice's device, enrolled with an admin signature unless <paramref name="lax"/>.
    /// </summary>
    public async Task<TestPool> CreatePoolAsync(bool lax = false, long premium = 100_000)
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var pool = new TestPool("pool-" + suffix, "flood-" + suffix, new SimulatedDevice("dev-" + suffix));
        _pools.Add(pool);
        var e = Engine;
        var admins = lax ? Array.Empty<AdminKey>() : [AdminKey];
        await e.CreatePoolAsync(pool.Id, "Riverside homes", "EUR", Key.Name, 50_000, admins,
            Sign(pool.Id, LedgerEntry.PoolCreated, e.PoolBody(pool.Id, "Riverside homes", "EUR", Key.Name, 50_000, admins)), default);
        await e.AddMemberAsync(pool.Id, "alice", "Alice", default);
        await e.AddMemberAsync(pool.Id, "bob", "Bob", default);
        await e.IssuePolicyAsync(pool.Id, "alice", pool.Policy, FloodRule, PolicyAmount, 0, null,
            Sign(pool.Id, LedgerEntry.PolicyIssued, ClaimsEngine.PolicyBody(pool.Policy, "alice", FloodRule, PolicyAmount, 0, null)), default);
        if (premium > 0)
        {
            await PremiumAsync(pool.Id, "alice", premium, "pay-alice-" + suffix);
        }

        var device = pool.Device;
        var enrolment = lax ? null : Sign(pool.Id, LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(device.Id, "alice", device.PublicKey));
        await e.EnrollDeviceAsync(pool.Id, "alice", device.Id, device.PublicKey, enrolment, default);
        return pool;
    }

    public JsonObject Sign(string pool, string kind, JsonObject body) => AdminSignature.Sign(Admin, pool, kind, body);

    /// <summary>A premium with its payment reference, signed by the pool administrator as the nodes require.</summary>
    public Task PremiumAsync(string pool, string member, long amount, string reference) =>
        Engine.RecordPremiumAsync(pool, member, amount, reference, Sign(pool, LedgerEntry.Premium, RegistryChange.Premium(member, amount, reference)), default);

    /// <summary>Real COSE_Sign1 records, verified as the ingest pipeline does, stored by the engine.</summary>
    public async Task<List<byte[]>> StoreAsync(TestPool pool, List<byte[]> records)
    {
        await Engine.StoreAsync([.. records.Select(r => pool.ToVerified(r))], default);
        return records;
    }

    /// <summary>The justification the engine sends for a payout: the cited records with the predecessor of the first, and the device key.</summary>
    public static JsonObject Justification(TestPool pool, IEnumerable<byte[]> records) => new()
    {
        ["pool"] = pool.Id,
        ["purpose"] = "payout",
        ["evidence"] = new JsonArray([.. records.Select(c => (JsonNode)new JsonObject
        {
            ["device"] = pool.Device.Id, ["seq"] = pool.ToVerified(c).Sequence, ["cose"] = Base64Url.Encode(c),
        })]),
        ["device_keys"] = new JsonObject { [pool.Device.Id] = LedgerExport.PublicKeyPem(pool.Device.PublicKey) },
    };

    public override async Task DisposeAsync()
    {
        _engine?.Dispose();
        _db?.Dispose();
        Stores?.Dispose();
        Admin.Dispose();
        foreach (var pool in _pools)
        {
            await pool.Device.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}
