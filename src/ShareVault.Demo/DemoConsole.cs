using System.Diagnostics;
using Spectre.Console;

namespace ShareVault.Demo;

/// <summary>
/// What the demo shows a person: one line per step with what was verified and how long it took;
/// a spinner while a step runs on a terminal, plain lines when there is none (CI, pipes).
/// </summary>
internal sealed class DemoConsole
{
    private readonly IAnsiConsole _console = CreateConsole();
    private readonly bool _interactive = AnsiConsole.Profile.Capabilities.Interactive
        && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
    private int _step;

    // Without a terminal Spectre assumes 80 columns and wraps every line; logs read better unwrapped.
    private static IAnsiConsole CreateConsole()
    {
        var console = AnsiConsole.Console;
        if (!console.Profile.Capabilities.Interactive)
        {
            console.Profile.Width = 200;
        }

        return console;
    }

    public void Title(string text) => _console.Write(new Rule($"[bold]{Markup.Escape(text)}[/]").LeftJustified());

    /// <summary>Runs one step; its result line says what was done and verified. A failing step ends the demo.</summary>
    public async Task<T> StepAsync<T>(string title, Func<Action<string>, Task<(T Result, string Summary)>> action)
    {
        _step++;
        var start = Stopwatch.GetTimestamp();
        (T Result, string Summary) outcome;
        if (_interactive)
        {
            outcome = await _console.Status().StartAsync($"{_step}. {Markup.Escape(title)}", async context =>
                await action(line => context.Status($"{_step}. {Markup.Escape(title)}: {Markup.Escape(line)}")).ConfigureAwait(false)).ConfigureAwait(false);
        }
        else
        {
            _console.MarkupLine($"[grey]{_step}. {Markup.Escape(title)} ...[/]");
            outcome = await action(line => _console.MarkupLine($"[grey]   {Markup.Escape(line)}[/]")).ConfigureAwait(false);
        }

        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        _console.MarkupLine($"[green]✔[/] {_step}. [bold]{Markup.Escape(title)}[/] [grey]({seconds:0.0} s)[/]");
        foreach (var line in outcome.Summary.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            _console.MarkupLine($"     {Markup.Escape(line)}");
        }

        return outcome.Result;
    }

    public void Fail(string step, string reason) => _console.MarkupLine($"[red]✘ {Markup.Escape(step)}: {Markup.Escape(reason)}[/]");

    public void Line(string text) => _console.MarkupLine(Markup.Escape(text));
}
