using System.CommandLine;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using ShareVault.Node.Audit;
using ShareVault.Node.Certificates;
using ShareVault.Node.Server;

using ShareVault.Service;

namespace ShareVault.Cli;

/// <summary><c>sharevault node run|audit|certs</c>: a custody node beside one custodian's hardware.</summary>
internal static class NodeCommands
{
    public static Command Build()
    {
        var node = new Command("node", "Run a custody node (one custodian's hardware behind mutual TLS), read its audit log, make its certificates");
        node.Subcommands.Add(Run());
        node.Subcommands.Add(AuditCommand());
        node.Subcommands.Add(Certs());
        return node;
    }

    private static Command Run()
    {
        var custodian = new Option<string>("--custodian") { Description = "The custodian this node fronts: pkcs11:token=…?pin-source=file:PATH or tpm:object=…?tcti=…&pin-source=…", Required = true };
        var listen = new Option<string>("--listen") { Description = "IP:PORT to listen on (HTTPS, client certificates required)", Required = true };
        var cert = new Option<string>("--cert") { Description = "Server certificate: .pfx (no password) or PEM (key in --cert-key or the same file)", Required = true };
        var certKey = new Option<string?>("--cert-key") { Description = "PEM private key of --cert" };
        var clientCa = new Option<string>("--client-ca") { Description = "PEM CA certificate: only coordinators with a client certificate it issued are served", Required = true };
        var adminKeys = new Option<string[]>("--admin-key") { Description = "PEM public key of a pool administrator (P-256 or RSA); repeat for each", Arity = ArgumentArity.ZeroOrMore };
        var maxPerPayout = new Option<long>("--max-per-payout") { Description = "Largest payout this node signs (minor units)", DefaultValueFactory = _ => long.MaxValue };
        var maxPerDay = new Option<long>("--max-per-day") { Description = "Most this node signs per UTC day (minor units)", DefaultValueFactory = _ => long.MaxValue };
        var allowRaw = new Option<bool>("--allow-raw-signing") { Description = "Also sign messages that are neither payouts nor checkpoints (sharevault sign)" };
        var command = new Command("run", "Serve one custodian's hardware to coordinators over mutual TLS; every partial is checked by the node's guard and audited")
        {
            custodian, listen, cert, certKey, clientCa, adminKeys, maxPerPayout, maxPerDay, allowRaw,
        };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            if (!IPEndPoint.TryParse(result.GetValue(listen)!, out var endpoint) || endpoint.Port == 0)
            {
                throw new ArgumentException("--listen takes IP:PORT with a port other than 0");
            }

            var options = new NodeOptions(CliContext.ReadableDataDir(result), result.GetValue(custodian)!, endpoint, result.GetValue(cert)!, result.GetValue(certKey),
                result.GetValue(clientCa)!, result.GetValue(adminKeys) ?? [], result.GetValue(maxPerPayout), result.GetValue(maxPerDay), result.GetValue(allowRaw));
            await using var node = await CustodyNode.StartAsync(options, new ForwardingLoggerProvider(CliContext.Logging), cancellationToken).ConfigureAwait(false);
            Console.WriteLine($"node {node.Custodian} listening on https://{endpoint}");
            await node.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
            return CliContext.Ok;
        }));
        return command;
    }

    private static Command AuditCommand()
    {
        var verify = new Option<bool>("--verify") { Description = "Check the hash chain; exit 1 naming the first broken line" };
        var command = new Command("audit", "Print a node's audit log (DATA_DIR/audit.jsonl) as JSON lines") { verify };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var path = Path.Combine(CliContext.ReadableDataDir(result), AuditLog.FileName);
            var text = File.Exists(path) ? await File.ReadAllTextAsync(path, Encoding.UTF8, cancellationToken).ConfigureAwait(false) : string.Empty;
            Console.Write(text);
            if (!result.GetValue(verify))
            {
                return CliContext.Ok;
            }

            var check = AuditLog.Verify(text);
            if (check.BrokenLine is { } broken)
            {
                await Console.Error.WriteLineAsync($"sharevault: audit log {path} is broken at line {broken}: {check.Reason}").ConfigureAwait(false);
                return CliContext.Failed;
            }

            await Console.Error.WriteLineAsync($"audit log intact: {check.Lines} line(s), head {check.LastHash}").ConfigureAwait(false);
            return CliContext.Ok;
        }));
        return command;
    }

    private static Command Certs()
    {
        var output = new Option<string>("--out") { Description = "Folder for ca.pem, ca.key, NAME.pem and NAME.key (keys mode 0600)", Required = true };
        var nodes = new Option<string>("--nodes") { Description = "Node names, comma-separated (one server certificate each)", Required = true };
        var coordinator = new Option<string>("--coordinator") { Description = "Coordinator name (one client certificate)", Required = true };
        var hosts = new Option<string?>("--hosts") { Description = "Server certificate SANs, comma-separated (default localhost,127.0.0.1)" };
        var command = new Command("certs", "Make a private CA, a server certificate per node and a coordinator client certificate") { output, nodes, coordinator, hosts };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(() =>
        {
            static string[] Split(string? text) => text?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            var written = NodeCertificates.Create(result.GetValue(output)!, Split(result.GetValue(nodes)), result.GetValue(coordinator)!, Split(result.GetValue(hosts)), TimeProvider.System);
            foreach (var path in written)
            {
                Console.WriteLine(path);
            }

            return CliContext.Ok;
        }));
        return command;
    }
}
