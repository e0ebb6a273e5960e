using ShareVault.Claims.Errors;
using ShareVault.Hardware;

namespace ShareVault.Cli.Tests;

/// <summary>The CLI's one failure boundary (<see cref="CliContext.RunAsync(Func{Task{int}})"/>).</summary>
public sealed class CliContextTests
{
    [Theory]
    [InlineData("claims")]
    [InlineData("hardware")]
    [InlineData("disk full")]
    [InlineData("permission")]
    [InlineData("format")]
    [InlineData("argument")]
    [InlineData("json")]
    [InlineData("refused state")]
    public async Task An_expected_failure_is_a_one_line_reason_and_exit_1(string kind)
    {
        Exception failure = kind switch
        {
            "claims" => new ClaimsException(ClaimsError.NotFound, "No pool 'p'"),
            "hardware" => new ShareStoreException(ShareStoreError.DeviceUnreachable, "token 'custody-a' not found"),
            "disk full" => new IOException("No space left on device"),
            "permission" => new UnauthorizedAccessException("pin file"),
            "format" => new FormatException("bad rule"),
            "argument" => new ArgumentException("--listen takes IP:PORT"),
            "json" => new System.Text.Json.JsonException("not JSON"),
            _ => new InvalidOperationException("schema version 9"),
        };
        Assert.Equal(CliContext.Failed, await CliContext.RunAsync(() => Task.FromException<int>(failure)));
    }

    [Theory]
    [InlineData("timeout")]
    [InlineData("division")]
    [InlineData("not implemented")]
    public async Task A_bug_is_logged_with_its_exception_and_exits_70(string kind)
    {
        Exception bug = kind switch
        {
            "timeout" => new TimeoutException("a bug that waited forever"),
            "division" => new DivideByZeroException(),
            _ => new NotImplementedException(),
        };
        Assert.Equal(CliContext.Bug, await CliContext.RunAsync(() => Task.FromException<int>(bug)));
    }
}
