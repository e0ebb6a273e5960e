using System.Diagnostics;
using System.Text.Json;
using DeviceAgent.Delivery;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Hardware.Tpm;
using ShareVault.Service;
using Simulators;
using Simulators.Scenarios;

namespace ShareVault.Demo;

/// <summary>
/// The whole story with the real pieces: two SoftHSM custody tokens made by the project's own token
/// script and a TPM custodian on a swtpm the demo starts itself, each fronted by its own custody node
/// process (<see cref="DemoNodes"/>; the claims service holds no PIN), a 2-of-3 pool key born inside them
/// (product RSA: every 2-custodian quorum is a key of its own, docs/tpm.md), the claims service (embedded MQTT broker, SQLite),
/// two simulated homes whose real drivers feed the real agent pipeline (device keys in a token,
/// durable outbox, MQTT delivery with receipts), the trigger, the claim, the threshold-signed payout,
/// and the ledger export verified offline.
/// Idempotent: tokens, the TPM state (OUT/tpm, with the swtpm port the key record's TCTI names) and
/// keys are kept between runs; each run replays the homes into a fresh service state, so the outcome
/// is the same. <c>--fresh</c> deletes tokens, TPM state and keys too.
/// </summary>
internal sealed class DemoRun(string outDir, bool fresh, DemoConsole console, TimeProvider time)
{
    public const string PoolKey = "pool-1";
    public const string Pool = "pool-1";
    public const string LeakRule = "water_leak == 1 for 10m";
    public const long Payout = 25_000;
    public const long MaxPayout = 100_000;
    public const long Premium = 30_000;
    public const string TpmCustodian = "custody-t";
    public static readonly string[] TokenCustodians = ["custody-a", "custody-b"];
    public static readonly string[] Custodians = [.. TokenCustodians, TpmCustodian];

    /// <summary>The quorum that signs the ledger's checkpoints, so the TPM node computes a partial in every run.</summary>
    public const string TpmQuorumKid = PoolKey + "/custody-a+" + TpmCustodian;
    public const string DeviceToken = "device-keys";

    /// <summary>The pool operator's token: its P-256 key signs the pool, policies, premiums and devices the nodes accept.</summary>
    private const string AdminToken = "pool-admin";

    private static readonly (string Device, string Member, string Scenario)[] Homes =
    [
        ("kit-flood", "household-flood", "home-flood"),
        ("kit-quiet", "household-quiet", "quiet-home"),
    ];

    private string DataDir => Path.Combine(outDir, "data");

    private string RunDir => Path.Combine(outDir, "run");

    public async Task<bool> RunAsync(CancellationToken cancellationToken)
    {
        console.Title("ShareVault demo: a flooded home, a quiet one, a 2-of-3 pool key in hardware");
        if (fresh && Directory.Exists(outDir))
        {
            Directory.Delete(outDir, recursive: true);
        }

        Directory.CreateDirectory(outDir);
        foreach (var artefact in new[] { "payouts", "evidence", "devices", "audit", RunDir })
        {
            var path = Path.Combine(outDir, artefact);
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }

        var step = "custody tokens";
        SwtpmProcess? swtpm = null;
        var hardware = new DemoHardware(outDir);
        using var nodes = new DemoNodes(outDir, Custodians);
        try
        {
            swtpm = await console.StepAsync("Custody tokens + TPM: SoftHSM2 tokens for custody-a, custody-b, the pool admin and device keys; swtpm for custody-t", async report =>
            {
                var tokens = await hardware.CreateTokensAsync([.. TokenCustodians, AdminToken, DeviceToken], report, cancellationToken).ConfigureAwait(false);
                step = "TPM custodian";
                var started = hardware.StartTpm(report);
                return (started, $"{tokens}\nswtpm (TPM 2.0 simulator) pid {started.Pid} on 127.0.0.1:{started.Port}, state in tpm/, {TpmCustodian} auth value in tpm/{TpmCustodian}.pin");
            }).ConfigureAwait(false);

            step = "custody nodes";
            using var admin = new DemoAdmin(
                $"pkcs11:token={AdminToken};object={AdminToken}?module-path={Hardware.Pkcs11.Pkcs11Uri.DefaultModulePath}&pin-source=file:{Path.Combine(hardware.HsmDir, "pins", AdminToken + ".pin")}",
                Path.Combine(outDir, "admin", AdminToken + ".pem"));
            await console.StepAsync("Custody nodes: one `sharevault node run` process per custodian, each with only its own PIN, mutual TLS on loopback", async report =>
            {
                var prepared = nodes.Prepare(time);
                nodes.ResetReplicas();
                var uris = Custodians.ToDictionary(c => c, hardware.CustodianUri);
                await nodes.StartAsync(uris, admin.PemFile, new Dictionary<string, string> { ["SOFTHSM2_CONF"] = Path.Combine(hardware.HsmDir, "softhsm2.conf") }, report, cancellationToken)
                    .ConfigureAwait(false);
                return (0, prepared + "\n" + string.Join('\n', nodes.Describe())
                    + $"\npool administrator key {admin.Key.Kid} on token {AdminToken} (nodes accept registry changes it signs); the claims service opens no custody token and reads no PIN");
            }).ConfigureAwait(false);

            // The coordinator's custodians are the nodes only: this store registry never opens a token or a TPM.
            using var stores = CustodianStores.Open(DataDir);
            var catalog = new KeyCatalog(DataDir);
            step = "pool key";
            var key = await console.StepAsync("Pool key: 2-of-3 product RSA, each custodian's key born inside its token or the TPM, through its node", report =>
            {
                var record = catalog.Exists(PoolKey)
                    ? catalog.Load(PoolKey)
                    : new ProductRsaCeremony(stores, catalog, time).Create(PoolKey, 2, 2048, [.. Custodians.Select(nodes.NodeUri)], new SynchronousProgress(report));
                if (!record.Quorums.Any(q => q.Kid == TpmQuorumKid) || record.Custodians.Any(c => c.Kind != CustodianKind.Node))
                {
                    throw new InvalidOperationException(
                        $"the pool key in {DataDir} was made by an older demo (custodians {string.Join(", ", record.Custodians.Select(c => $"{c.Name} ({c.Kind})"))}), not through custody nodes: run with --fresh");
                }

                return Task.FromResult((record, "quorums (any 2 of custody-a, custody-b, custody-t):\n"
                    + string.Join('\n', record.Quorums.Select(q => $"{q.Kid}: RSA-{ProductRsaKey.CompositeKey(record, q).BitLength}"))));
            }).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(outDir, "jwks.json"),
                KeyPublication.ToJwks(KeyPublication.PublicKeys(key)).ToJsonString(new JsonSerializerOptions { WriteIndented = true }), cancellationToken).ConfigureAwait(false);

            step = "claims service";
            var mqttPort = FreePort();
            // Payouts go to the first quorum that answers; checkpoints to custody-a + custody-t, so the TPM node signs in every run.
            var signer = new DemoPoolSigner(new ThresholdPoolSigner(catalog, new ThresholdSigner(stores)),
                new ThresholdPoolSigner(catalog, new ThresholdSigner(stores) { Signers = new HashSet<string>(["custody-a", TpmCustodian], StringComparer.Ordinal) }));
            await using var host = await console.StepAsync("Claims service: embedded MQTT broker, SQLite, device login by signed proof", async report =>
            {
                var started = await ClaimsHost.StartAsync(new ServiceOptions
                {
                    DataDir = Directory.CreateDirectory(Path.Combine(RunDir, "service")).FullName,
                    MqttPort = mqttPort,
                    MqttTlsPort = 0,
                    HttpPort = LoopbackPorts.Reserve(), // the members log in and vote over it (DemoVotes)
                }, signer, time, cancellationToken).ConfigureAwait(false);
                return (started, $"broker on mqtt://127.0.0.1:{mqttPort} (loopback); HTTP API {started.HttpAddress}; database {Path.Combine(RunDir, "service", "claims.db")}");
            }).ConfigureAwait(false);
            var engine = host.Engine;

            step = "pool";
            await console.StepAsync("Pool, members and a declared trigger, signed by the pool administrator", async report =>
            {
                AdminKey[] admins = [admin.Key];
                await engine.CreatePoolAsync(Pool, "Canal-side homes", "EUR", PoolKey, 100_000, admins,
                    admin.Sign(LedgerEntry.PoolCreated, engine.PoolBody(Pool, "Canal-side homes", "EUR", PoolKey, 100_000, admins)), cancellationToken).ConfigureAwait(false);
                foreach (var (_, member, _) in Homes)
                {
                    await engine.AddMemberAsync(Pool, member, member, cancellationToken).ConfigureAwait(false);
                }

                string ruleHash = string.Empty;
                foreach (var (_, member, _) in Homes)
                {
                    var body = ClaimsEngine.PolicyBody("leak-" + member, member, LeakRule, Payout, 0, null);
                    var policy = await engine.IssuePolicyAsync(Pool, member, "leak-" + member, LeakRule, Payout, 0, null, admin.Sign(LedgerEntry.PolicyIssued, body), cancellationToken)
                        .ConfigureAwait(false);
                    ruleHash = Convert.ToHexStringLower(policy.Rule.Hash);
                }

                return (0, $"rule \"{LeakRule}\" (sha256 {ruleHash[..16]}…), payout 250.00 EUR; pool and policies signed by admin key {admin.Key.Kid[..12]}…");
            }).ConfigureAwait(false);

            step = "chain";
            using var chain = await console.StepAsync("On chain: anvil on loopback, the pool's PoolTreasury; members pay their premiums (2 × 300.00 EUR) with deposit", async report =>
                await DemoChain.StartWithPremiumsAsync(key, DataDir, engine, admin, [.. Homes.Select(h => h.Member)], report, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);

            step = "devices";
            var devices = new List<SimulatedDevice>();
            try
            {
                await console.StepAsync("Homes' sensor kits: device keys born in a token, enrolled with the pool", async report =>
                {
                    var lines = new List<string>();
                    foreach (var (device, member, scenario) in Homes)
                    {
                        var definition = Scenario.BuiltIn(scenario);
                        var kit = SimulatedDevice.Open(definition, device, Path.Combine(RunDir, device), hardware.DeviceKeyUri(device), allowSoftwareKey: false,
                            time.GetUtcNow() - definition.Duration);
                        devices.Add(kit);
                        var pem = kit.PublicKeyPem;
                        Directory.CreateDirectory(Path.Combine(outDir, "devices"));
                        await File.WriteAllTextAsync(Path.Combine(outDir, "devices", device + ".pem"), pem, cancellationToken).ConfigureAwait(false);
                        using var publicKey = System.Security.Cryptography.ECDsa.Create();
                        publicKey.ImportFromPem(pem);
                        var spki = publicKey.ExportSubjectPublicKeyInfo();
                        await engine.EnrollDeviceAsync(Pool, member, device, spki, admin.Sign(LedgerEntry.DeviceEnrolled, RegistryChange.DeviceEnrolled(device, member, spki)), cancellationToken)
                            .ConfigureAwait(false);
                        lines.Add($"{device} ({scenario}): {definition.Description}");
                    }

                    return (0, string.Join('\n', lines));
                }).ConfigureAwait(false);

                step = "members";
                var votes = new DemoVotes(outDir, console);
                await votes.JoinAsync(host, admin, cancellationToken).ConfigureAwait(false);

                step = "evidence";
                await console.StepAsync("Sensors read by the real drivers, evidence signed in the token, queued in the durable outbox", report =>
                {
                    var lines = new List<string>();
                    foreach (var device in devices)
                    {
                        report($"{device.DeviceId}: {device.Scenario.Duration.TotalHours:0.#} h of {device.Scenario.Name} at simulated speed");
                        var records = device.Run(device.Scenario.Duration);
                        var leak = records.FirstOrDefault(r => r.Record.Readings.Any(x => x.Name == "water_leak" && x.Value >= 1));
                        lines.Add($"{device.DeviceId}: {records.Count} COSE_Sign1 records"
                            + (leak is null ? ", no leak" : $", leak first seen in record #{leak.Record.Sequence} at {leak.Record.Time:HH:mm:ss}"));
                    }

                    return Task.FromResult((0, string.Join('\n', lines)));
                }).ConfigureAwait(false);

                step = "delivery";
                var deliveryStart = Stopwatch.GetTimestamp();
                await console.StepAsync("Delivery over MQTT 5 (QoS 1); a record leaves the outbox only on the service's stored-receipt", async report =>
                {
                    using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    var deliveries = devices.Select(d => new MqttDelivery(d.DeviceId, new DeviceAgent.Delivery.BrokerOptions
                    {
                        Uri = new Uri($"mqtt://127.0.0.1:{mqttPort}"),
                        DeviceProofKey = d.Signer,
                        MinBackoff = TimeSpan.FromMilliseconds(200),
                        ResendAfter = TimeSpan.FromSeconds(5),
                    }, d.Outbox, TimeProvider.System)).ToList();
                    var running = deliveries.Select(d => d.RunAsync(stop.Token)).ToList();
                    var deadline = Stopwatch.StartNew();
                    while (devices.Any(d => d.Outbox.Count > 0))
                    {
                        if (deadline.Elapsed > TimeSpan.FromMinutes(2))
                        {
                            throw new InvalidOperationException($"outboxes not drained after 2 minutes: {string.Join(", ", devices.Select(d => $"{d.DeviceId} {d.Outbox.Count} left"))}");
                        }

                        report(string.Join(", ", devices.Select(d => $"{d.DeviceId}: {d.Outbox.Count} waiting")));
                        await Task.Delay(200, cancellationToken).ConfigureAwait(false);
                    }

                    await stop.CancelAsync().ConfigureAwait(false);
                    await Task.WhenAll(running).ConfigureAwait(false);
                    foreach (var delivery in deliveries)
                    {
                        await delivery.DisposeAsync().ConfigureAwait(false);
                    }

                    return (0, $"{engine.EvidenceCount()} records stored and receipted; outboxes empty; rejected: {host.Ingest.Rejections.Values.Sum()}");
                }).ConfigureAwait(false);

                step = "claim and payout";
                var payouts = await console.StepAsync("Trigger evaluated, claim opened, custodians sign the payout (2 of 3, inside their tokens or the TPM)", async report =>
                {
                    var deadline = Stopwatch.StartNew();
                    while (engine.ListPayouts(Pool).Count == 0 && deadline.Elapsed < TimeSpan.FromMinutes(1))
                    {
                        await host.HousekeepOnceAsync(cancellationToken).ConfigureAwait(false);
                        report($"{engine.ListClaims(Pool).Count} claim(s), waiting for the payout signature");
                        await Task.Delay(200, cancellationToken).ConfigureAwait(false);
                    }

                    var claims = engine.ListClaims(Pool);
                    var paid = engine.ListPayouts(Pool);
                    var lines = claims.Select(c => $"claim {c.Id}: {c.MemberId} via {c.DeviceId}, {c.Status}, {c.Evidence.Count} evidence record(s)").ToList();
                    lines.AddRange(paid.Select(p => $"payout for {p.ClaimId} signed by {p.Kid}"));
                    return (paid, string.Join('\n', lines));
                }).ConfigureAwait(false);

                step = "verification";
                await console.StepAsync("Verified as a sceptic would: payout JWS against jwks.json, every evidence file against its device key", async report =>
                {
                    var jwks = KeyPublication.PublicKeys(key);
                    var paidDevices = new HashSet<string>(StringComparer.Ordinal);
                    var payoutDir = Directory.CreateDirectory(Path.Combine(outDir, "payouts")).FullName;
                    foreach (var payout in payouts)
                    {
                        if (!Jws.TryParse(payout.Jws, out var parts) || jwks.FirstOrDefault(k => k.Kid == parts.Kid) is not { Key: { } verifier } || !Jws.Verify(parts, verifier))
                        {
                            throw new InvalidOperationException($"payout {payout.ClaimId} does not verify against jwks.json");
                        }

                        paidDevices.Add(engine.ListClaims(Pool).Single(c => c.Id == payout.ClaimId).DeviceId);
                        await File.WriteAllTextAsync(Path.Combine(payoutDir, payout.ClaimId + ".jws"), payout.Jws, cancellationToken).ConfigureAwait(false);
                    }

                    if (!paidDevices.SetEquals(["kit-flood"]) || payouts.Count != 1)
                    {
                        throw new InvalidOperationException($"expected exactly one payout, for kit-flood; got {payouts.Count} for [{string.Join(", ", paidDevices)}]");
                    }

                    var verified = 0;
                    foreach (var device in devices)
                    {
                        var dir = Directory.CreateDirectory(Path.Combine(outDir, "evidence", device.DeviceId)).FullName;
                        using var deviceKey = System.Security.Cryptography.ECDsa.Create();
                        deviceKey.ImportFromPem(await File.ReadAllTextAsync(Path.Combine(outDir, "devices", device.DeviceId + ".pem"), cancellationToken).ConfigureAwait(false));
                        foreach (var stored in engine.Evidence(device.DeviceId, 0, int.MaxValue))
                        {
                            var check = EvidenceVerifier.Verify(stored.Cose, id => id == device.DeviceId ? deviceKey : null);
                            if (!check.IsValid)
                            {
                                throw new InvalidOperationException($"evidence {device.DeviceId}/{stored.Sequence} does not verify: {check.Reason}");
                            }

                            await File.WriteAllBytesAsync(Path.Combine(dir, $"{stored.Sequence}.cose"), stored.Cose, cancellationToken).ConfigureAwait(false);
                            verified++;
                        }
                    }

                    return (0, $"1 payout (kit-flood), 0 for kit-quiet; {verified} evidence files verified; leak delivered → payout verified in {Stopwatch.GetElapsedTime(deliveryStart).TotalSeconds:0.0} s");
                }).ConfigureAwait(false);

                step = "settlement";
                await console.StepAsync("Payout settled on chain through the custody nodes (each checks the treasury message against its own ledger)", async report =>
                    (0, await chain.SettleAsync(engine, Homes[0].Member, Payout, cancellationToken).ConfigureAwait(false))).ConfigureAwait(false);

                step = "member votes";
                await votes.DecideAsync(host, key, cancellationToken).ConfigureAwait(false);

                step = "repair settlement";
                await console.StepAsync("The repair payout settled on chain through the custody nodes too", async report =>
                    (0, await chain.SettleAsync(engine, Homes[0].Member, DemoVotes.RepairPayout, cancellationToken).ConfigureAwait(false))).ConfigureAwait(false);

                step = "ledger";
                await console.StepAsync("Ledger exported and verified offline: hash chain, checkpoints, payout re-evaluated from evidence", async report =>
                {
                    await engine.CheckpointAsync(Pool, force: true, cancellationToken).ConfigureAwait(false);
                    var text = LedgerExport.ToText(engine.ExportLedger(Pool));
                    await File.WriteAllTextAsync(Path.Combine(outDir, "ledger.json"), text, cancellationToken).ConfigureAwait(false);
                    var verification = LedgerVerifier.Verify(text);
                    if (!verification.IsValid)
                    {
                        throw new InvalidOperationException("ledger export does not verify: " + verification.Detail);
                    }

                    // Every checkpoint went to the quorum with the TPM (DemoPoolSigner): its JWS names that kid.
                    var kids = engine.ExportLedger(Pool)["checkpoints"]!.AsArray().Select(c => Jws.TryParse(c!["jws"]!.GetValue<string>(), out var j) ? j.Kid : null).ToHashSet();
                    if (!kids.SetEquals([TpmQuorumKid]))
                    {
                        throw new InvalidOperationException($"expected every checkpoint signed by {TpmQuorumKid}; got {string.Join(", ", kids)}");
                    }

                    return (0, $"{verification.Entries} entries, {verification.Checkpoints} threshold-signed checkpoint(s) (by {TpmQuorumKid}: the TPM node computed a partial), "
                        + $"{verification.Payouts} payout(s), {verification.Reevaluated} trigger(s) re-evaluated");
                }).ConfigureAwait(false);

                step = "anchor";
                await console.StepAsync("Checkpoint anchored in the treasury; ledger.json cross-checked with the chain and read back with plain JSON-RPC", async report =>
                    (0, await chain.AnchorAndCheckAsync(engine, outDir, cancellationToken).ConfigureAwait(false))).ConfigureAwait(false);

                step = "audit";
                await console.StepAsync("Custody nodes' audit logs: every request each node signed or refused, hash-chained; copied to audit/ and checked", report =>
                {
                    var summaries = nodes.CollectAudit();
                    var paidBy = summaries.Where(a => a.PayoutsSigned > 0).Select(a => a.Custodian).ToList();
                    if (paidBy.Count < 2 || summaries.Single(a => a.Custodian == TpmCustodian).CheckpointsSigned == 0)
                    {
                        throw new InvalidOperationException($"the audit logs do not show a 2-of-3 payout and a TPM checkpoint: {string.Join("; ", summaries)}");
                    }

                    return Task.FromResult((0, string.Join('\n', summaries.Select(a =>
                        $"audit/{a.Custodian}.jsonl: {a.Lines} line(s), chain verified; {a.PayoutsSigned} payout(s), {a.SettlementsSigned} treasury settlement(s) and {a.CheckpointsSigned} checkpoint(s) signed, {a.Refused} refused"))));
                }).ConfigureAwait(false);
            }
            finally
            {
                foreach (var device in devices)
                {
                    device.Dispose();
                }
            }

            await File.WriteAllTextAsync(Path.Combine(outDir, "VERIFY.md"), VerifyGuide.Text, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsStepFailure(e))
        {
            console.Fail(step, e.Message);
            return false;
        }
        finally
        {
            // Nodes first: the TPM node holds swtpm's one client connection; then an orderly TPM shutdown,
            // so the next run's start does not count towards the TPM's dictionary-attack lockout.
            nodes.Dispose();
            if (swtpm is not null)
            {
                swtpm.ShutDownOrderly(TimeSpan.FromSeconds(5));
                swtpm.Dispose();
            }
        }

        console.Line($"artefacts: {outDir}");
        return true;
    }

    /// <summary>
    /// The demo's one failure boundary (<see cref="CommandFailures.IsExpected"/>, the CLI's classification):
    /// what a step can fail with ends the run with the step named and exit 1; anything else is a bug and
    /// propagates with its stack.
    /// </summary>
    private static bool IsStepFailure(Exception e) => CommandFailures.IsExpected(e);

    // Below the ephemeral range and reserved for this process, so no client connection takes it before the broker binds it.
    private static int FreePort() => LoopbackPorts.Reserve();
}
