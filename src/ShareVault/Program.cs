using System.CommandLine;
using ShareVault.Cli;

var root = new RootCommand("ShareVault: threshold RSA keys whose shares live inside PKCS#11 and TPM hardware");
root.Options.Add(CliContext.DataDir);
root.Subcommands.Add(KeyCommands.Build());
root.Subcommands.Add(SignCommands.Sign());
root.Subcommands.Add(SignCommands.Verify());
root.Subcommands.Add(CustodianCommands.Build());
root.Subcommands.Add(NodeCommands.Build());
root.Options.Add(ClaimsCommands.Database);
root.Subcommands.Add(ClaimsCommands.Serve());
root.Subcommands.Add(ClaimsCommands.Device());
root.Subcommands.Add(ClaimsCommands.Pool());
root.Subcommands.Add(ClaimsCommands.LedgerCommand());
root.Subcommands.Add(AdminCommands.Build());
root.Subcommands.Add(MemberCommands.Build());
root.Subcommands.Add(ChainCommands.Build());
var exitCode = await root.Parse(args).InvokeAsync().ConfigureAwait(false);
CliContext.Logging.Dispose(); // the console logger writes from a queue: flush it before the process ends
return exitCode;
