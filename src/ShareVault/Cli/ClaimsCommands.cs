using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Rules;
using ShareVault.Claims.Storage;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Signing;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Service;

namespace ShareVault.Cli;

/// <summary><c>sharevault serve</c>, <c>device enroll</c>, <c>pool …</c>, <c>ledger export|verify</c>.</summary>
internal static class ClaimsCommands
{
    public static readonly Option<string?> Database = new("--db")
    {
        Description = "Claims database: a SQLite file (default DATA_DIR/claims.db) or a PostgreSQL connection string (Host=…;Database=…;Username=… or postgresql://user@host:port/db; password from PGPASSWORD or ~/.pgpass, never in logs)",
        Recursive = true,
    };

    public static Command Serve()
    {
        var mqttTls = new Option<int>("--mqtt-tls-port") { Description = "Embedded broker TLS port (0 = off)", DefaultValueFactory = _ => 8883 };
        var mqttPlain = new Option<int>("--mqtt-port") { Description = "Embedded broker plain-TCP port on loopback (0 = off; for local tools and tests)", DefaultValueFactory = _ => 0 };
        var mqttBind = new Option<string>("--mqtt-address") { Description = "Address the embedded broker listens on", DefaultValueFactory = _ => "127.0.0.1" };
        var http = new Option<int>("--http-port") { Description = "HTTP API port on 127.0.0.1", DefaultValueFactory = _ => 8080 };
        var broker = new Option<string?>("--broker") { Description = "External broker URL (mqtt://host:port or mqtts://host:port): subscribe with $share/sharevault/… instead of embedding one" };
        var brokerCa = new Option<string?>("--broker-ca") { Description = "PEM CA file for an mqtts broker" };
        var brokerCert = new Option<string?>("--broker-cert") { Description = "PEM client certificate for the external broker" };
        var brokerKey = new Option<string?>("--broker-key") { Description = "PEM client key for the external broker" };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Sign a ledger checkpoint after this many entries", DefaultValueFactory = _ => 64 };
        var checkpointMinutes = new Option<int>("--checkpoint-minutes") { Description = "…or after this many minutes", DefaultValueFactory = _ => 10 };
        var operatorKey = new Option<string[]>("--operator-key") { Description = "PEM public key (P-256 or RSA, e.g. from 'sharevault admin key create') that logs in as the service's operator; repeatable. A pool's admin keys log in as that pool's operator.", AllowMultipleArgumentsPerToken = false };
        var publicOrigin = new Option<string?>("--public-origin") { Description = "The dashboard's origin as browsers reach it, which passkeys are bound to (default http://localhost:HTTP_PORT)" };
        var time = new EvidenceTimeOptions();
        var chain = new Option<string?>("--chain") { Description = "JSON-RPC URL: settle signed payouts and anchor checkpoints on the pools' treasuries ('sharevault chain deploy'; docs/treasury.md)" };
        var chainSender = new Option<FileInfo?>("--chain-sender-key-file") { Description = "Hex private key of the gas-paying account (default: $SHAREVAULT_CHAIN_KEY_FILE, or anvil's dev account on chain 31337)" };
        var chainInterval = new Option<double>("--chain-interval-seconds") { Description = "Seconds between settlement passes", DefaultValueFactory = _ => 5 };
        var command = new Command("serve", "Run the claims service: embedded MQTT broker, SQLite, HTTP API, payouts signed by the pool's threshold key")
        {
            mqttTls, mqttPlain, mqttBind, http, broker, brokerCa, brokerCert, brokerKey, checkpointEvery, checkpointMinutes, time.MaxAge, time.MaxLead, time.MaxStepBack, operatorKey, publicOrigin, chain, chainSender, chainInterval,
        };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var dataDir = CliContext.ReadableDataDir(result);
            var faults = FaultInjection.FromEnvironment(Console.Error);
            using var stores = CustodianStores.Open(dataDir);
            IPoolSigner signer = new ThresholdPoolSigner(new KeyCatalog(dataDir), new ThresholdSigner(stores));
            signer = faults?.Wrap(signer) ?? signer;
            var url = result.GetValue(broker);
            var options = new ServiceOptions
            {
                DataDir = dataDir,
                DatabasePath = DatabasePath(result),
                MqttPort = url is null ? result.GetValue(mqttPlain) : 0,
                MqttTlsPort = url is null ? result.GetValue(mqttTls) : 0,
                MqttAddress = System.Net.IPAddress.Parse(result.GetValue(mqttBind)!),
                HttpPort = result.GetValue(http),
                ExternalBroker = url is null ? null : new ExternalBrokerOptions
                {
                    Url = new Uri(url),
                    CaFile = result.GetValue(brokerCa),
                    CertFile = result.GetValue(brokerCert),
                    KeyFile = result.GetValue(brokerKey),
                },
                Claims = new ClaimsOptions
                {
                    CheckpointEvery = result.GetValue(checkpointEvery),
                    CheckpointInterval = TimeSpan.FromMinutes(result.GetValue(checkpointMinutes)),
                    EvidenceTime = time.Read(result),
                },
                AfterStoreBeforeReceipts = faults?.AfterStoreBeforeReceipts(),
                OperatorKeys = [.. (result.GetValue(operatorKey) ?? []).Select(f => AdminKey.FromPem(File.ReadAllText(f)))],
                PublicOrigin = result.GetValue(publicOrigin) is { } origin ? new Uri(origin) : null,
                ChainRpcUrl = result.GetValue(chain),
            };
            // Logs go to stderr (stdout stays the service's one-line announcements, which scripts read).
            await using var host = await ClaimsHost.StartAsync(options, signer, TimeProvider.System, cancellationToken, CliContext.Logging).ConfigureAwait(false);
            Console.WriteLine($"sharevault: claims service on {host.Database.DisplayName}");
            if (host.Broker is not null)
            {
                if (options.MqttTlsPort > 0)
                {
                    Console.WriteLine($"  mqtts://{options.MqttAddress}:{options.MqttTlsPort}  broker certificate SHA-256 {host.BrokerCertificateFingerprint} ({Path.Combine(dataDir, "broker", "broker.crt")})");
                }

                if (options.MqttPort > 0)
                {
                    Console.WriteLine($"  mqtt://{options.MqttAddress}:{options.MqttPort}  (plain TCP)");
                }
            }
            else
            {
                Console.WriteLine($"  subscribed to {url} as {options.ExternalBroker!.ClientId} ($share/{options.ExternalBroker.ShareGroup}/…)");
            }

            Console.WriteLine($"  dashboard {options.PublicOrigin?.GetLeftPart(UriPartial.Authority) ?? $"http://localhost:{host.HttpAddress?.Port}"}/dashboard/");
            Console.WriteLine($"  HTTP API {host.HttpAddress}");
            var settlements = result.GetValue(chain) is { } rpc
                ? ChainCommands.ForServe(dataDir, rpc, ChainCommands.ReadSenderKey(result.GetValue(chainSender)), host.Engine, CliContext.Logging.CreateLogger("ShareVault.Chain"))
                : [];
            var loops = settlements.Select(s => s.RunAsync(TimeSpan.FromSeconds(result.GetValue(chainInterval)), TimeProvider.System, cancellationToken)).ToList();
            foreach (var s in settlements)
            {
                Console.WriteLine($"  chain: pool {s.Config.Pool} settles on treasury {s.Config.Treasury} ({s.Config.Caip2})");
            }

            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }

            await Task.WhenAll(loops).ConfigureAwait(false);

            return CliContext.Ok;
        }));
        return command;
    }

    public static Command Device()
    {
        var pool = new Option<string>("--pool") { Required = true, Description = "Pool id" };
        var member = new Option<string>("--member") { Required = true, Description = "Member whose policies the device serves" };
        var key = new Option<string>("--device-key") { Required = true, Description = "Device public key: a PEM or JWK file (or the text itself)" };
        var id = new Option<string?>("--device") { Description = "Device id (default: the JWK's kid)" };
        var enroll = new Command("enroll", "Bind a device's public key to a member's policies, signed by the member (--key or --member-sig); records from unenrolled devices are rejected")
        {
            pool, member, key, id, MemberActions.Key, MemberActions.Signature, AdminCommands.AdminSig, AdminCommands.PrintBody,
        };
        enroll.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var text = result.GetValue(key)!;
            if (File.Exists(text))
            {
                text = await File.ReadAllTextAsync(text, cancellationToken).ConfigureAwait(false);
            }

            var (deviceId, spki) = DeviceKeys.Parse(text, result.GetValue(id));
            var body = RegistryChange.DeviceEnrolled(deviceId, result.GetValue(member)!, spki);
            if (result.GetValue(AdminCommands.PrintBody))
            {
                // The administrator's signature covers the member's: sign it first ('member sign'), then pass it with --member-sig.
                if (result.GetValue(MemberActions.Key) is not null)
                {
                    throw new ArgumentException("--print-body takes the member's signature made beforehand (--member-sig), not --key: the administrator signs over it");
                }

                if (result.GetValue(MemberActions.Signature) is { } file)
                {
                    body[MemberSignature.Field] = JsonNode.Parse(await File.ReadAllTextAsync(file.FullName, cancellationToken).ConfigureAwait(false));
                }

                Console.WriteLine(body.ToJsonString());
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, cancellationToken).ConfigureAwait(false);
            await WithEngineAsync(result, async engine =>
            {
                var memberSig = await MemberActions.SignAsync(result, engine, result.GetValue(pool)!, result.GetValue(member)!, LedgerEntry.DeviceEnrolled, body, cancellationToken).ConfigureAwait(false);
                await engine.EnrollDeviceAsync(result.GetValue(pool)!, result.GetValue(member)!, deviceId, spki, admin, memberSig, cancellationToken).ConfigureAwait(false);
            }).ConfigureAwait(false);
            Console.WriteLine($"enrolled {deviceId} for {result.GetValue(member)} in {result.GetValue(pool)}; it publishes to {ShareVault.Evidence.EvidenceTopics.Evidence(deviceId)}");
            return CliContext.Ok;
        }));
        var device = new Command("device", "Enrol evidence devices");
        device.Subcommands.Add(enroll);
        return device;
    }

    public static Command Pool()
    {
        var pool = new Command("pool", "Pools, members, policies, premiums, claims");
        var poolId = new Option<string>("--pool") { Required = true, Description = "Pool id" };
        var memberId = new Option<string>("--member") { Required = true, Description = "Member id" };

        var name = new Option<string>("--name") { Description = "Display name" };
        var currency = new Option<string>("--currency") { Description = "ISO 4217 code", DefaultValueFactory = _ => "EUR" };
        var keyName = new Option<string>("--key") { Required = true, Description = "Threshold key that signs payouts and checkpoints" };
        var maxPayout = new Option<long>("--max-payout") { Required = true, Description = "Largest payout per claim, in minor units" };
        var adminKeys = new Option<FileInfo[]>("--admin-key") { Description = "A pool administrator's public key PEM (repeatable; 'sharevault admin key create'): policies and devices of the pool then need an admin signature", Arity = ArgumentArity.ZeroOrMore };
        var create = new Command("create", "Create a pool") { poolId, name, currency, keyName, maxPayout, adminKeys, AdminCommands.AdminSig, AdminCommands.PrintBody };
        create.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var id = result.GetValue(poolId)!;
            var admins = new List<AdminKey>();
            foreach (var file in result.GetValue(adminKeys) ?? [])
            {
                admins.Add(AdminKey.FromPem(await File.ReadAllTextAsync(file.FullName, ct).ConfigureAwait(false)));
            }

            if (result.GetValue(AdminCommands.PrintBody))
            {
                await WithEngineAsync(result, e =>
                {
                    Console.WriteLine(e.PoolBody(id, result.GetValue(name) ?? id, result.GetValue(currency)!, result.GetValue(keyName)!, result.GetValue(maxPayout), admins).ToJsonString());
                    return Task.CompletedTask;
                }).ConfigureAwait(false);
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, ct).ConfigureAwait(false);
            await WithEngineAsync(result, e => e.CreatePoolAsync(id, result.GetValue(name) ?? id, result.GetValue(currency)!, result.GetValue(keyName)!, result.GetValue(maxPayout), admins, admin, ct)).ConfigureAwait(false);
            Console.WriteLine($"created pool {id}");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(create);

        var join = new Command("join", "Add a member; with --key they record their key and sign the join, and every later action of theirs must be signed by it") { poolId, memberId, name, MemberActions.Key };
        join.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var (id, member) = (result.GetValue(poolId)!, result.GetValue(memberId)!);
            var display = result.GetValue(name) ?? member;
            await WithEngineAsync(result, async e =>
            {
                if (result.GetValue(MemberActions.Key) is not { } keyReference)
                {
                    MemberActions.RefuseUnsigned(e, id, member, LedgerEntry.MemberJoined);
                    await e.AddMemberAsync(id, member, display, ct).ConfigureAwait(false);
                    return;
                }

                using var signing = MemberCommands.OpenKey(keyReference);
                var memberKey = MemberKey.FromSubjectPublicKeyInfo(signing.Key.ExportSubjectPublicKeyInfo());
                await e.AddMemberAsync(id, member, display, memberKey, MemberSignature.Sign(signing.Key, id, LedgerEntry.MemberJoined, RegistryChange.MemberJoined(member, display, memberKey)), ct)
                    .ConfigureAwait(false);
            }).ConfigureAwait(false);
            Console.WriteLine($"{result.GetValue(memberId)} joined {result.GetValue(poolId)}");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(join);

        var policyId = new Option<string>("--policy") { Required = true, Description = "Policy id" };
        var rule = new Option<string>("--rule") { Required = true, Description = "Trigger rule, e.g. \"water_leak == 1 for 10m\" (docs/claims-service.md)" };
        var amount = new Option<long>("--amount") { Required = true, Description = "Payout in minor units" };
        var votes = new Option<int>("--votes") { Description = "Member approvals needed (0 = automatic)", DefaultValueFactory = _ => 0 };
        var places = new Option<string[]>("--place") { Description = "NAME=LAT,LON for distance_from(NAME)", Arity = ArgumentArity.ZeroOrMore };
        var windows = new Option<string[]>("--window") { Description = "NAME=START/END (ISO 8601) for 'during NAME'", Arity = ArgumentArity.ZeroOrMore };
        var policy = new Command("policy", "Issue a policy with a declared trigger") { poolId, memberId, policyId, rule, amount, votes, places, windows, AdminCommands.AdminSig, AdminCommands.PrintBody };
        policy.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var context = new RuleContext(
                (result.GetValue(places) ?? []).Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p =>
                {
                    var ll = p[1].Split(',');
                    return new Place(double.Parse(ll[0], CultureInfo.InvariantCulture), double.Parse(ll[1], CultureInfo.InvariantCulture));
                }, StringComparer.Ordinal),
                (result.GetValue(windows) ?? []).Select(w => w.Split('=', 2)).ToDictionary(w => w[0], w =>
                {
                    var se = w[1].Split('/');
                    return new TimeWindow(DateTimeOffset.Parse(se[0], CultureInfo.InvariantCulture), DateTimeOffset.Parse(se[1], CultureInfo.InvariantCulture));
                }, StringComparer.Ordinal));
            if (result.GetValue(AdminCommands.PrintBody))
            {
                Console.WriteLine(ClaimsEngine.PolicyBody(result.GetValue(policyId)!, result.GetValue(memberId)!, result.GetValue(rule)!, result.GetValue(amount), result.GetValue(votes), context).ToJsonString());
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, ct).ConfigureAwait(false);
            PolicyRow? row = null;
            await WithEngineAsync(result, async e => row = await e.IssuePolicyAsync(result.GetValue(poolId)!, result.GetValue(memberId)!, result.GetValue(policyId)!,
                result.GetValue(rule)!, result.GetValue(amount), result.GetValue(votes), context, admin, ct).ConfigureAwait(false)).ConfigureAwait(false);
            Console.WriteLine($"policy {row!.Id}: {row.Rule.Text}  (sha256 {row.Rule.HashHex})");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(policy);

        var reference = new Option<string?>("--ref") { Description = "The payment's reference (bank or chain transaction id), unique in the pool; required in an administered pool" };
        var premium = new Command("premium", "Record a premium paid into the pool") { poolId, memberId, amount, reference, AdminCommands.AdminSig, AdminCommands.PrintBody };
        premium.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            if (result.GetValue(AdminCommands.PrintBody))
            {
                Console.WriteLine(RegistryChange.Premium(result.GetValue(memberId)!, result.GetValue(amount), result.GetValue(reference)).ToJsonString());
                return CliContext.Ok;
            }

            var admin = await AdminCommands.ReadSignatureAsync(result, ct).ConfigureAwait(false);
            await WithEngineAsync(result, e => e.RecordPremiumAsync(result.GetValue(poolId)!, result.GetValue(memberId)!, result.GetValue(amount), result.GetValue(reference), admin, ct)).ConfigureAwait(false);
            Console.WriteLine("premium recorded");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(premium);

        var list = new Command("list", "Pools with their balance");
        list.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            await WithEngineAsync(result, e =>
            {
                foreach (var p in e.ListPools())
                {
                    Console.WriteLine($"{p.Id}\t{p.Name}\t{p.Balance} {p.Currency}\tkey {p.KeyName}\tmax payout {p.MaxPayout}");
                }

                return Task.CompletedTask;
            }).ConfigureAwait(false);
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(list);

        var optionalPool = new Option<string?>("--pool") { Description = "Pool id" };
        var claims = new Command("claims", "Claims and their status") { optionalPool };
        claims.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            await WithEngineAsync(result, e =>
            {
                foreach (var c in e.ListClaims(result.GetValue(optionalPool)))
                {
                    Console.WriteLine($"{c.Id}\t{c.Status}\t{c.MemberId}\t{c.DeviceId}#{c.StartSequence}\t{c.Amount}\t{c.Reason}");
                }

                return Task.CompletedTask;
            }).ConfigureAwait(false);
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(claims);

        var claimId = new Option<string>("--claim") { Required = true, Description = "Claim id" };
        var decline = new Option<bool>("--decline") { Description = "Vote to decline (default: approve)" };
        var vote = new Command("vote", "A member's vote on a claim whose policy asks for votes, signed by the member (--key or --member-sig)") { claimId, memberId, decline, MemberActions.Key, MemberActions.Signature };
        vote.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var status = string.Empty;
            var (claim, member, approve) = (result.GetValue(claimId)!, result.GetValue(memberId)!, !result.GetValue(decline));
            await WithEngineAsync(result, async e =>
            {
                var pool = e.ListClaims().FirstOrDefault(c => c.Id == claim)?.PoolId;
                var memberSig = pool is null ? null : await MemberActions.SignAsync(result, e, pool, member, LedgerEntry.Vote, RegistryChange.Vote(claim, member, approve), ct).ConfigureAwait(false);
                status = await e.VoteAsync(claim, member, approve, memberSig, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
            Console.WriteLine($"claim {result.GetValue(claimId)} is {status}");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(vote);

        var acceptedPolicy = new Option<string>("--policy") { Required = true, Description = "Policy id" };
        var accept = new Command("accept", "The member accepts their policy (policy_accepted: exactly this rule), signed by the member (--key or --member-sig)")
        {
            poolId, memberId, acceptedPolicy, MemberActions.Key, MemberActions.Signature,
        };
        accept.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var (id, member, policyId) = (result.GetValue(poolId)!, result.GetValue(memberId)!, result.GetValue(acceptedPolicy)!);
            await WithEngineAsync(result, async e =>
            {
                var policy = e.ListPolicies(id).FirstOrDefault(p => p.Id == policyId && p.MemberId == member)
                    ?? throw new ClaimsException(ClaimsError.NotFound, $"No policy '{policyId}' of member '{member}' in pool '{id}'");
                var memberSig = await MemberActions.SignAsync(result, e, id, member, LedgerEntry.PolicyAccepted, RegistryChange.PolicyAccepted(policyId, member, policy.RuleHash), ct).ConfigureAwait(false);
                await e.AcceptPolicyAsync(id, policyId, member, memberSig, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
            Console.WriteLine($"{result.GetValue(memberId)} accepted {policyId} in {result.GetValue(poolId)}");
            return CliContext.Ok;
        }));
        pool.Subcommands.Add(accept);
        return pool;
    }

    public static Command LedgerCommand()
    {
        var poolId = new Option<string>("--pool") { Required = true, Description = "Pool id" };
        var output = new Option<FileInfo>("--out") { Required = true, Description = "Export file (JSON)" };
        var noCheckpoint = new Option<bool>("--no-checkpoint")
        {
            Description = "Do not sign a checkpoint over the head first (without custodians; the export then ends with unsigned entries unless the head is already signed)",
        };
        var export = new Command("export", "Sign a checkpoint over the ledger head (unless it is signed) and write the pool's ledger with everything needed to verify it offline")
        {
            poolId, output, noCheckpoint,
        };
        export.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            string text = string.Empty;
            await WithEngineAsync(result, async e =>
            {
                // ledger verify accepts only entries a threshold-signed checkpoint covers.
                if (!result.GetValue(noCheckpoint))
                {
                    await e.CheckpointAsync(result.GetValue(poolId)!, force: true, ct).ConfigureAwait(false);
                }

                text = LedgerExport.ToText(e.ExportLedger(result.GetValue(poolId)!));
            }).ConfigureAwait(false);
            await File.WriteAllTextAsync(result.GetValue(output)!.FullName, text, ct).ConfigureAwait(false);
            Console.WriteLine($"ledger of {result.GetValue(poolId)} -> {result.GetValue(output)!.FullName}");
            return CliContext.Ok;
        }));

        var input = new Option<FileInfo>("--in") { Required = true, Description = "Export file to verify" };
        var time = new EvidenceTimeOptions();
        var acceptUnsigned = new Option<bool>("--accept-unsigned-tail")
        {
            Description = "Accept entries after the last threshold-signed checkpoint (reported as UNSIGNED); without it they make the export invalid",
        };
        var chainRpc = new Option<string?>("--chain") { Description = "JSON-RPC URL: also cross-check the export with the pool's treasury (anchored checkpoints, payouts)" };
        var treasury = new Option<string?>("--treasury") { Description = "With --chain: the treasury address (default: from the export's payout_settled entries or DATA_DIR/chain/POOL.json)" };
        var verify = new Command("verify", "Verify an export offline: hash chain, checkpoints, payout signatures, triggers recomputed from evidence (exit 0 only if valid)")
        {
            input, acceptUnsigned, time.MaxAge, time.MaxLead, time.MaxStepBack, chainRpc, treasury,
        };
        verify.SetAction((result, ct) => CliContext.RunAsync(async () =>
        {
            var text = await File.ReadAllTextAsync(result.GetValue(input)!.FullName, ct).ConfigureAwait(false);
            var verification = LedgerVerifier.Verify(text, new LedgerVerifyOptions { EvidenceTime = time.Read(result), AcceptUnsignedTail = result.GetValue(acceptUnsigned) });
            (verification.IsValid ? Console.Out : Console.Error).WriteLine(verification.IsValid ? "valid: " + verification.Detail : "sharevault: invalid ledger: " + verification.Detail);
            if (verification.IsValid && result.GetValue(chainRpc) is { } rpc)
            {
                return await ChainCommands.CrossCheckAsync(text, rpc, result.GetValue(treasury), CliContext.ReadableDataDir(result), ct).ConfigureAwait(false);
            }

            return verification.IsValid ? CliContext.Ok : CliContext.Failed;
        }));
        var ledger = new Command("ledger", "Export and verify pool ledgers");
        ledger.Subcommands.Add(export);
        ledger.Subcommands.Add(verify);
        return ledger;
    }

    internal static string DatabasePath(ParseResult result) =>
        result.GetValue(Database) is { } db
            ? (ClaimsDatabase.IsPostgreSql(db) ? db : Path.GetFullPath(db))
            : Path.Combine(CliContext.ReadableDataDir(result), "claims.db");

    internal static async Task WithEngineAsync(ParseResult result, Func<ClaimsEngine, Task> work)
    {
        var dataDir = CliContext.ReadableDataDir(result);
        using var stores = CustodianStores.Open(dataDir);
        using var db = ClaimsDatabase.Open(DatabasePath(result));
        using var engine = new ClaimsEngine(db, new ThresholdPoolSigner(new KeyCatalog(dataDir), new ThresholdSigner(stores)), TimeProvider.System);
        await work(engine).ConfigureAwait(false);
    }
}

/// <summary>
/// The record-time bounds (<see cref="EvidenceTimeLimits"/>) as options of <c>serve</c> and <c>ledger verify</c>,
/// so an export is verified under the bounds its service ran with.
/// </summary>
internal sealed class EvidenceTimeOptions
{
    public Option<double> MaxAge { get; } = new("--max-record-age-hours")
    {
        Description = "Refuse a record timed more than this many hours before its arrival",
        DefaultValueFactory = _ => EvidenceTimeLimits.Default.MaxAge.TotalHours,
    };

    public Option<double> MaxLead { get; } = new("--max-record-lead-seconds")
    {
        Description = "Refuse a record timed more than this many seconds after its arrival",
        DefaultValueFactory = _ => EvidenceTimeLimits.Default.MaxLead.TotalSeconds,
    };

    public Option<double> MaxStepBack { get; } = new("--max-clock-step-back-seconds")
    {
        Description = "Refuse a record timed more than this many seconds before its device's previous record",
        DefaultValueFactory = _ => EvidenceTimeLimits.Default.MaxStepBack.TotalSeconds,
    };

    public EvidenceTimeLimits Read(ParseResult result)
    {
        var (age, lead, back) = (result.GetValue(MaxAge), result.GetValue(MaxLead), result.GetValue(MaxStepBack));
        if (!(age >= 0 && lead >= 0 && back >= 0 && double.IsFinite(age + lead + back)))
        {
            throw new ArgumentException("The record-time bounds are finite numbers of hours or seconds, zero or more");
        }

        return new EvidenceTimeLimits { MaxAge = TimeSpan.FromHours(age), MaxLead = TimeSpan.FromSeconds(lead), MaxStepBack = TimeSpan.FromSeconds(back) };
    }
}
