using System.CommandLine;
using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;

namespace ShareVault.Cli;

/// <summary>
/// <c>sharevault admin …</c>: a pool administrator's P-256 key on their own PKCS#11 token (never the
/// coordinator's) and detached signatures over registry changes (<see cref="AdminSignature"/>).
/// </summary>
internal static class AdminCommands
{
    /// <summary><c>--admin-sig FILE</c> on the verbs that change a registry: the JSON <c>admin sign</c> printed.</summary>
    public static readonly Option<FileInfo?> AdminSig = new("--admin-sig") { Description = "A pool administrator's signature over this change: the JSON file 'sharevault admin sign' printed" };

    /// <summary><c>--print-body</c>: print the body an administrator signs, change nothing.</summary>
    public static readonly Option<bool> PrintBody = new("--print-body") { Description = "Print the ledger body a pool administrator signs for this change ('sharevault admin sign --body'), and change nothing" };

    public static Command Build()
    {
        var token = new Option<string>("--token")
        {
            Required = true,
            Description = "PKCS#11 URI of the admin key: pkcs11:token=T;object=LABEL?module-path=…&pin-source=file:… (created when absent)",
        };
        var create = new Command("create", "Create (or open) the admin's P-256 key inside their token; prints its public key PEM (give it to pool create --admin-key and node run --admin-key)") { token };
        create.SetAction(result => CliContext.RunAsync(() =>
        {
            using var key = Pkcs11DeviceKey.Open(result.GetValue(token)!, create: true);
            using var ecdsa = new HardwareECDsa(key);
            var admin = AdminKey.FromSubjectPublicKeyInfo(ecdsa.ExportSubjectPublicKeyInfo());
            Console.Write(admin.ToPem() + "\n");
            Console.Error.WriteLine($"admin key {admin.Kid} ({admin.Algorithm})");
            return CliContext.Ok;
        }));
        var keyCommand = new Command("key", "The pool administrator's key");
        keyCommand.Subcommands.Add(create);

        var keyUri = new Option<string>("--key") { Required = true, Description = "PKCS#11 URI of the admin key (see admin key create)" };
        var pool = new Option<string>("--pool") { Required = true, Description = "Pool id" };
        var kind = new Option<string>("--kind") { Required = true, Description = "pool_created, policy_issued, device_enrolled, premium, payout_address or treasury" };
        var body = new Option<string>("--body") { Required = true, Description = "The change's body as JSON (a file, or - for stdin): what --print-body shows" };
        var sign = new Command("sign", "Sign a registry change with the admin key; prints {\"kid\",\"sig\"} (a detached JWS, RFC 7515 App. F) for --admin-sig") { keyUri, pool, kind, body };
        sign.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var kindText = result.GetValue(kind)!;
            if (!AdminSignature.IsRegistryChange(kindText))
            {
                throw new ArgumentException($"--kind must be {LedgerEntry.PoolCreated}, {LedgerEntry.PolicyIssued}, {LedgerEntry.DeviceEnrolled}, {LedgerEntry.Premium}, {LedgerEntry.PayoutAddress} or {LedgerEntry.Treasury}");
            }

            var source = result.GetValue(body)!;
            var text = source == "-" ? await Console.In.ReadToEndAsync(cancellationToken).ConfigureAwait(false) : await File.ReadAllTextAsync(source, cancellationToken).ConfigureAwait(false);
            var parsed = ParseObject(text, "--body");
            using var key = Pkcs11DeviceKey.Open(result.GetValue(keyUri)!);
            using var ecdsa = new HardwareECDsa(key);
            Console.WriteLine(AdminSignature.Sign(ecdsa, result.GetValue(pool)!, kindText, parsed).ToJsonString());
            return CliContext.Ok;
        }));

        var admin = new Command("admin", "Pool administration: the admin key (on the admin's own token) and signatures over pools, policies and devices");
        admin.Subcommands.Add(keyCommand);
        admin.Subcommands.Add(sign);
        return admin;
    }

    /// <summary>The <c>--admin-sig</c> file's JSON object, or null when the option is absent.</summary>
    public static async Task<JsonObject?> ReadSignatureAsync(ParseResult result, CancellationToken cancellationToken)
    {
        if (result.GetValue(AdminSig) is not { } file)
        {
            return null;
        }

        return ParseObject(await File.ReadAllTextAsync(file.FullName, cancellationToken).ConfigureAwait(false), "--admin-sig");
    }

    private static JsonObject ParseObject(string text, string what)
    {
        try
        {
            return JsonNode.Parse(text) as JsonObject ?? throw new FormatException($"{what} is not a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new FormatException($"{what} is not JSON: {e.Message}", e);
        }
    }
}
