using System.CommandLine;
using ShareVault.Cli;

namespace ShareVault.Demo;

/// <summary><c>sharevault demo [--out DIR] [--fresh]</c>: the whole story on embedded defaults.</summary>
internal static class DemoCommand
{
    public static Command Build()
    {
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "Folder for the demo's tokens, state and artefacts",
            DefaultValueFactory = _ => new DirectoryInfo("demo-out"),
        };
        var fresh = new Option<bool>("--fresh") { Description = "Start over: delete the folder's tokens, TPM state, keys and artefacts first" };
        var command = new Command("demo", "Run the end-to-end demo: custody tokens, a 2-of-3 pool key, a threshold-signed payout") { output, fresh };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var demo = new DemoRun(result.GetValue(output)!.FullName, result.GetValue(fresh), new DemoConsole(), TimeProvider.System);
            return await demo.RunAsync(cancellationToken).ConfigureAwait(false) ? CliContext.Ok : CliContext.Failed;
        }));
        return command;
    }
}
