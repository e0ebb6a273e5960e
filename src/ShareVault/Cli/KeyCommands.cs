using System.CommandLine;
using System.Text.Json;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Threshold;
using ShareVault.Custody.Threshold.ProductRsa;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Cli;

/// <summary><c>sharevault key create|public|list</c>.</summary>
internal static class KeyCommands
{
    public static Command Build()
    {
        var key = new Command("key", "Create threshold keys and export their public parts");
        key.Subcommands.Add(Create());
        key.Subcommands.Add(Public());
        key.Subcommands.Add(List());
        return key;
    }

    private static Command Create()
    {
        var name = new Option<string>("--name") { Description = "Key name (also the object label in each custodian's token)", Required = true };
        var scheme = new Option<string>("--scheme") { Description = "Threshold scheme", DefaultValueFactory = _ => KeySchemeText.ProductRsa };
        scheme.AcceptOnlyFromAmong(KeySchemeText.ProductRsa, KeySchemeText.ShoupRsa);
        var threshold = new Option<int>("--threshold") { Description = "Custodians needed to sign (t of n)", Required = true };
        var bits = new Option<int>("--bits") { Description = "RSA size: of each custodian key (product-rsa) or of the one key (shoup-rsa); 2048 or 3072", DefaultValueFactory = _ => 2048 };
        bits.AcceptOnlyFromAmong("2048", "3072");
        var custodians = new Option<string[]>("--custodian")
        {
            Description = "Custodian URI (pkcs11:token=LABEL?module-path=…&pin-source=file:PATH or tpm:object=NAME?tcti=…); repeat for each",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("create", "Create a t-of-n key whose shares are born inside the custodians' hardware")
        {
            name, scheme, threshold, bits, custodians,
        };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(() =>
        {
            var dataDir = CliContext.ReadableDataDir(result);
            var catalog = new KeyCatalog(dataDir);
            using var stores = CustodianStores.Open(dataDir);
            var chosen = result.GetValue(scheme)!;
            var report = new SynchronousProgress(line => Console.Error.WriteLine("  " + line));
            if (chosen == KeySchemeText.ShoupRsa)
            {
                var shoup = new ShoupCeremony(stores, catalog, TimeProvider.System).Create(
                    result.GetValue(name)!, result.GetValue(threshold), result.GetValue(bits), result.GetValue(custodians)!, report, cancellationToken);
                Console.WriteLine($"created {shoup.Scheme.ToText()} key '{shoup.Name}': {shoup.Threshold} of {shoup.Custodians.Count}, one public key");
                foreach (var (kid, publicKey) in KeyPublication.PublicKeys(shoup))
                {
                    Console.WriteLine($"  {kid}  RSA-{publicKey.BitLength}");
                }

                return CliContext.Ok;
            }

            var record = new ProductRsaCeremony(stores, catalog, TimeProvider.System).Create(
                result.GetValue(name)!, result.GetValue(threshold), result.GetValue(bits), result.GetValue(custodians)!, report);
            Console.WriteLine($"created {record.Scheme.ToText()} key '{record.Name}': {record.Threshold} of {record.Custodians.Count}, {record.Quorums.Count} quorum key(s)");
            foreach (var quorum in record.Quorums)
            {
                Console.WriteLine($"  {quorum.Kid}  RSA-{ProductRsaKey.CompositeKey(record, quorum).BitLength}");
            }

            return CliContext.Ok;
        }));
        return command;
    }

    private static Command Public()
    {
        var name = new Option<string>("--name") { Description = "Key name", Required = true };
        var format = new Option<string>("--format") { Description = "jwks (RFC 7517) or pem", DefaultValueFactory = _ => "jwks" };
        format.AcceptOnlyFromAmong("jwks", "pem");
        var quorum = new Option<string?>("--quorum") { Description = "Only this verification key (kid)" };
        var command = new Command("public", "Write the key's public verification keys to stdout") { name, format, quorum };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(() =>
        {
            var record = new KeyCatalog(CliContext.ReadableDataDir(result)).Load(result.GetValue(name)!);
            var keys = KeyPublication.Select(record, result.GetValue(quorum));
            Console.Write(result.GetValue(format) == "pem"
                ? KeyPublication.ToPem(keys)
                : KeyPublication.ToJwks(keys).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            return CliContext.Ok;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List the keys in the data folder");
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(() =>
        {
            var catalog = new KeyCatalog(CliContext.ReadableDataDir(result));
            foreach (var keyName in catalog.Names())
            {
                var record = catalog.Load(keyName);
                Console.WriteLine($"{record.Name}\t{record.Scheme.ToText()}\t{record.Threshold}-of-{record.Custodians.Count}\t{string.Join(',', record.Custodians.Select(c => c.Name))}");
            }

            return CliContext.Ok;
        }));
        return command;
    }
}
