using System.Text;
using ShareVault.TestSupport;

namespace ShareVault.Demo.Tests;

/// <summary><c>softhsm-config/create-tokens.sh</c>, which the demo runs on every start, in a folder of its own.</summary>
public sealed class CreateTokensScriptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sv-tokens-").FullName;

    [Fact]
    public async Task A_token_that_softhsm_no_longer_lists_is_refused_instead_of_made_again()
    {
        Assert.Equal(0, (await CreateTokensAsync()).ExitCode);
        var again = await CreateTokensAsync();
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("token 'probe-a' already exists", again.StdOut, StringComparison.Ordinal);

        // What a process killed while SoftHSM 2.6 rewrites token.object leaves behind (C_Login truncates
        // the file, unlocks it, then writes it): an empty token.object, and SoftHSM lists no such token.
        var tokenObject = Directory.GetFiles(Path.Combine(_dir, "tokens"), "token.object", SearchOption.AllDirectories)
            .Single(f => Encoding.ASCII.GetString(File.ReadAllBytes(f)).Contains("probe-a", StringComparison.Ordinal));
        await File.WriteAllBytesAsync(tokenObject, []);
        var refused = await CreateTokensAsync();

        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("refusing to create a second 'probe-a'", refused.StdErr, StringComparison.Ordinal);
        Assert.Contains(": token.object 0 bytes", refused.StdErr, StringComparison.Ordinal);
        Assert.Equal(2, Directory.GetDirectories(Path.Combine(_dir, "tokens")).Length);
    }

    private Task<ProcessRunner.Result> CreateTokensAsync() =>
        ProcessRunner.RunAsync("bash", [Path.Combine(RepoRoot.Path, "softhsm-config", "create-tokens.sh"), _dir, "probe-a", "probe-b"]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
