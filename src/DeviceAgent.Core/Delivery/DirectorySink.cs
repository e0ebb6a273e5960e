using System.Globalization;
using DeviceAgent.Storage;
using ShareVault.Hardware;

namespace DeviceAgent.Delivery;

/// <summary>
/// The file sink (<c>--sink dir:PATH</c>): drains the outbox into a folder as <c>&lt;seq&gt;.cose</c>,
/// each the exact COSE_Sign1 bytes, for offline inspection and verification. A record leaves the
/// outbox only after its file is durably written.
/// </summary>
public sealed class DirectorySink
{
    private readonly string _directory;
    private readonly Outbox _outbox;

    public DirectorySink(string directory, Outbox outbox)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(outbox);
        _directory = Path.GetFullPath(directory);
        _outbox = outbox;
        System.IO.Directory.CreateDirectory(_directory);
    }

    public string Directory => _directory;

    /// <summary>Parses <c>dir:PATH</c>; null for other sinks.</summary>
    public static string? ParseSpec(string? sink) =>
        sink is not null && sink.StartsWith("dir:", StringComparison.Ordinal) && sink.Length > 4 ? sink[4..] : null;

    /// <summary>Writes every record now in the outbox; returns how many.</summary>
    public int DrainOnce()
    {
        var written = 0;
        foreach (var entry in _outbox.Snapshot())
        {
            var cose = _outbox.Read(entry);
            if (cose is null)
            {
                continue;
            }

            DurableFile.WriteAtomic(Path.Combine(_directory, entry.Sequence.ToString(CultureInfo.InvariantCulture) + ".cose"), cose);
            _outbox.Release(entry.Hash);
            written++;
        }

        return written;
    }

    /// <summary>Drains whenever records arrive, until cancelled; then drains once more and returns (a stop is not a failure).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            DrainOnce();
            try
            {
                await _outbox.WaitForRecordsAsync(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
        }

        // Records made while the stop was requested are written too, so a clean SIGTERM leaves nothing behind in the outbox.
        DrainOnce();
    }
}
