using System.CommandLine;
using ShareVault.Custody.Nodes;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Cli;

/// <summary><c>sharevault custodian list</c>: what a custodian's hardware holds (labels and kinds, never values).</summary>
internal static class CustodianCommands
{
    public static Command Build()
    {
        var custodian = new Command("custodian", "Inspect a custodian's hardware");
        var uri = new Option<string>("--custodian") { Description = "Custodian URI", Required = true };
        var list = new Command("list", "List the keys and shares a custodian holds") { uri };
        list.SetAction((result, cancellationToken) => CliContext.RunAsync(() =>
        {
            var dataDir = CliContext.ReadableDataDir(result);
            var address = CustodianAddress.Parse(result.GetValue(uri)!, "-");
            using var stores = CustodianStores.Open(dataDir);
            var objects = stores.Get(address).ListObjects();
            Console.WriteLine($"{address.Name}: {objects.Count} object(s)");
            foreach (var item in objects)
            {
                Console.WriteLine($"  {item.Label}\t{item.Kind}");
            }

            return CliContext.Ok;
        }));
        custodian.Subcommands.Add(list);
        return custodian;
    }
}
