using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace ShareVault.TestSupport;

/// <summary>
/// A long-running child process (a service, an agent) whose output lines are collected as they
/// arrive, so a test can wait for a line or for the exit with a bound, and always kills it on
/// <see cref="Dispose"/>. Unlike <see cref="ProcessRunner"/>, the test goes on while it runs.
/// </summary>
public sealed partial class ChildProcess : IDisposable
{
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<string> _timeline = [];
    private readonly DateTime _started = DateTime.UtcNow;
    private DateTime _exited;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Starts <paramref name="fileName"/>. Variables in <paramref name="environment"/> are set, or
    /// removed from the inherited environment where the value is null.
    /// </summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = RepoRoot.Path,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var child = new ChildProcess(process, name);
        process.OutputDataReceived += (_, e) => child.Add(child._stdout, "out", e.Data);
        process.ErrorDataReceived += (_, e) => child.Add(child._stderr, "err", e.Data);
        process.Exited += (_, _) =>
        {
            child._exited = DateTime.UtcNow;
            child.Wake();
        };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    public string StdOut => Join(_stdout);

    public string StdErr => Join(_stderr);

    /// <summary>What it printed so far, each line with the wall-clock time it arrived and its stream, for assertion messages.</summary>
    public string Output
    {
        get
        {
            var exit = _process.HasExited ? $"exit {_process.ExitCode} seen {_exited:HH:mm:ss.fff}" : "running";
            return $"--- {Name} (pid {_process.Id}, started {_started:HH:mm:ss.fff}, {exit})\n{Join(_timeline)}";
        }
    }

    /// <summary>The first stdout (or stderr) line matching <paramref name="match"/>; fails with the output when the process exits first or time runs out.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what, bool stderr = false)
    {
        ArgumentNullException.ThrowIfNull(match);
        var lines = stderr ? _stderr : _stdout;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (lines.FirstOrDefault(match) is { } line)
                {
                    return line;
                }

                changed = _changed.Task;
            }

            if (_process.HasExited)
            {
                // Exited is raised before the last output lines may have been read: drain, then look once more.
                using (var drained = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
                {
                    await _process.WaitForExitAsync(drained.Token);
                }

                lock (_gate)
                {
                    if (lines.FirstOrDefault(match) is { } last)
                    {
                        return last;
                    }
                }

                throw new InvalidOperationException($"{Name} exited before {what}\n{Output}");
            }

            var left = timeout - deadline.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"{Name}: no {what} within {timeout.TotalSeconds:F0} s\n{Output}");
            }

            try
            {
                await changed.WaitAsync(left);
            }
            catch (TimeoutException)
            {
            }
        }
    }

    /// <summary>Waits for the exit (with all output read) and returns the exit code; <paramref name="context"/> is added to the failure message.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, Func<string>? context = null)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds:F0} s\n{Output}{context?.Invoke()}");
        }

        return _process.ExitCode;
    }

    /// <summary>Sends <paramref name="signal"/> (kill(2)), e.g. <see cref="SigTerm"/> for a graceful stop.</summary>
    public void Signal(int signal)
    {
        if (SendSignal(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>SIGKILL unless it has exited, and wait for it.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    private void Add(List<string> lines, string stream, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_gate)
        {
            lines.Add(line);
            _timeline.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {stream} {line}");
        }

        Wake();
    }

    private void Wake()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    private string Join(List<string> lines)
    {
        lock (_gate)
        {
            var text = new StringBuilder();
            foreach (var line in lines)
            {
                text.Append(line).Append('\n');
            }

            return text.ToString();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
