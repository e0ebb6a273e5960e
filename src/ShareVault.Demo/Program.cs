using System.CommandLine;
using ShareVault.Demo;

// sharevault-demo [--out DIR] [--fresh]: the whole story on embedded defaults (what scripts/demo.sh runs).
var output = new Option<DirectoryInfo>("--out")
{
    Description = "Folder for the demo's tokens, state and artefacts",
    DefaultValueFactory = _ => new DirectoryInfo("demo-out"),
};
var fresh = new Option<bool>("--fresh") { Description = "Start over: delete the folder's tokens, TPM state, keys and artefacts first" };
var root = new RootCommand("Run the ShareVault end-to-end demo: custody tokens, a 2-of-3 pool key, sensor kits, a threshold-signed payout") { output, fresh };
root.SetAction(async (result, cancellationToken) =>
{
    var demo = new DemoRun(result.GetValue(output)!.FullName, result.GetValue(fresh), new DemoConsole(), TimeProvider.System);
    return await demo.RunAsync(cancellationToken).ConfigureAwait(false) ? 0 : 1;
});
// Ctrl-C cancels the run; give it time to stop the custody nodes and swtpm (its finally blocks) before the process exits.
return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
