namespace ShareVault.Custody.Threshold;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the calling thread. <see cref="Progress{T}"/> posts to
/// the thread pool, so a ceremony's last line could print after the command has returned.
/// </summary>
public sealed class SynchronousProgress(Action<string> report) : IProgress<string>
{
    public void Report(string value) => report(value);
}
