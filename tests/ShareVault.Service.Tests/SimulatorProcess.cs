namespace ShareVault.Service.Tests;

/// <summary>How these tests run the simulator executable from their own output folder.</summary>
internal static class SimulatorProcess
{
    /// <summary>
    /// <c>dotnet</c> arguments for Simulators.dll with <paramref name="args"/>. It runs under this test
    /// assembly's runtimeconfig: this folder is built against the ASP.NET shared framework (through the
    /// service), so Microsoft.Extensions.Logging is not copied here, and the simulator's own
    /// runtimeconfig (the .NET runtime only) would not find the agent's logging assemblies.
    /// </summary>
    public static string[] Arguments(params string[] args) =>
    [
        "exec", "--runtimeconfig", Path.Combine(AppContext.BaseDirectory, typeof(SimulatorProcess).Assembly.GetName().Name + ".runtimeconfig.json"),
        Path.Combine(AppContext.BaseDirectory, "Simulators.dll"), .. args,
    ];
}
