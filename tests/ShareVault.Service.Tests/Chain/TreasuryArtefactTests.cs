using ShareVault.Service.Chain;
using ShareVault.TestSupport;

namespace ShareVault.Service.Tests.Chain;

/// <summary>The committed contracts/PoolTreasury.json is what the pinned solc-js makes of the Solidity source.</summary>
public sealed class TreasuryArtefactTests
{
    [Fact]
    public async Task The_committed_artefact_matches_the_solidity_source_compiled_by_the_pinned_solc()
    {
        // solc-js compiles in-process under node: seconds alone, longer on a loaded machine.
        var result = await ProcessRunner.RunAsync("node", [Path.Combine(RepoRoot.Path, "contracts", "build.js"), "--check"], TimeSpan.FromMinutes(5));

        Assert.True(result.ExitCode == 0, result.StdErr + result.StdOut);
        Assert.Contains("0.8.30", result.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public void The_service_embeds_the_committed_artefact()
    {
        var committed = File.ReadAllText(Path.Combine(RepoRoot.Path, "contracts", "PoolTreasury.json"));

        Assert.Contains(TreasuryArtefact.TreasuryBytecode, committed, StringComparison.Ordinal);
        Assert.Contains(TreasuryArtefact.StablecoinBytecode, committed, StringComparison.Ordinal);
        Assert.StartsWith("solc-js 0.8.30", TreasuryArtefact.Compiler, StringComparison.Ordinal);
    }
}
