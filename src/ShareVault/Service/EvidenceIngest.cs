using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using ShareVault.Claims;
using ShareVault.Evidence;
using ShareVault.Ledger;

namespace ShareVault.Service;

/// <summary>Limits ingest applies beyond the evidence format's own (<see cref="EvidenceLimits"/>).</summary>
internal sealed record IngestOptions
{
    public EvidenceLimits Limits { get; init; } = EvidenceLimits.Default;

    /// <summary>Records older than this (device time) are refused: an outbox should never hold them that long.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Records from further in the future than this are refused (device clock skew allowance).</summary>
    public TimeSpan MaxFutureSkew { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Per-device sustained rate (records/s) and burst; beyond it records get no receipt and are retried by the agent.</summary>
    public double RatePerSecond { get; init; } = 200;

    public double Burst { get; init; } = 2000;

    /// <summary>Most records verified and committed in one transaction.</summary>
    public int BatchSize { get; init; } = 1024;

    /// <summary>Messages waiting for verification before publishers are slowed down (back-pressure).</summary>
    public int QueueCapacity { get; init; } = 20_000;
}

/// <summary>Where a message came from: its topic, bytes, and the device the broker authenticated (null from an external broker).</summary>
internal sealed record IncomingEvidence(string Topic, ReadOnlyMemory<byte> Payload, string? AuthenticatedDevice)
{
    /// <summary>Completed once the message is stored or rejected and receipted (external brokers acknowledge then).</summary>
    public TaskCompletionSource? Done { get; init; }
}

/// <summary>
/// Verifies evidence (signature under the enrolled key, device/topic match, size, time window, rate),
/// stores accepted records with their rejections in one SQLite transaction per batch, and only then
/// publishes each receipt. Rejections carry a reason name (an <see cref="EvidenceRejection"/> name or
/// one of the service reasons below) that is counted (<see cref="Metrics"/>) and stored (table
/// <c>rejections</c>, HTTP <c>/evidence/rejections</c>).
/// </summary>
internal sealed class EvidenceIngest : IAsyncDisposable
{
    public const string WrongTopic = "WrongTopic";
    public const string TopicMismatch = "TopicMismatch";
    public const string TimeOutOfWindow = "TimeOutOfWindow";
    public const string RateLimited = "RateLimited";

    [ThreadStatic]
    private static Dictionary<string, (byte[] Spki, ECDsa Key)>? _threadKeys;

    private readonly ClaimsEngine _engine;
    private readonly Func<string, byte[], CancellationToken, Task> _publishReceipt;
    private readonly TimeProvider _time;
    private readonly IngestOptions _options;
    private readonly Channel<IncomingEvidence> _queue;
    private readonly ConcurrentDictionary<string, TokenBucket> _rates = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    public EvidenceIngest(ClaimsEngine engine, Func<string, byte[], CancellationToken, Task> publishReceipt, TimeProvider time, IngestOptions? options = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _publishReceipt = publishReceipt ?? throw new ArgumentNullException(nameof(publishReceipt));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _options = options ?? new IngestOptions();
        _queue = Channel.CreateBounded<IncomingEvidence>(new BoundedChannelOptions(_options.QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    }

    public IngestMetrics Metrics { get; } = new();

    /// <summary>Test seam: runs after a batch is committed and before its receipts go out (a crash here must lose nothing).</summary>
    public Func<IReadOnlyList<VerifiedRecord>, CancellationToken, Task>? AfterStoreBeforeReceipts { get; set; }

    /// <summary>Raised (on the ingest loop) after each batch is stored and receipted; the host uses it to run payouts.</summary>
    public event Action? BatchCommitted;

    public void Start()
    {
        _loop ??= Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Queues a message; waits when the queue is full, so a fast publisher is slowed rather than dropped.</summary>
    public ValueTask SubmitAsync(IncomingEvidence message, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Metrics.ReceivedCount);
        return _queue.Writer.WriteAsync(message, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var batch = new List<IncomingEvidence>(_options.BatchSize);
        while (await _queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _options.BatchSize && _queue.Reader.TryRead(out var message))
            {
                batch.Add(message);
            }

            await ProcessBatchAsync(batch, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Verifies, stores, then receipts one batch. Public for tests and the benchmark.</summary>
    public async Task ProcessBatchAsync(IReadOnlyList<IncomingEvidence> batch, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var checks = new Check[batch.Count];

        // Signature checks dominate; spread them over the cores. Per-thread key caches keep each ECDsa on one thread.
        Parallel.For(0, batch.Count, new ParallelOptions { CancellationToken = cancellationToken }, i => checks[i] = Verify(batch[i], now));

        var records = new List<VerifiedRecord>(batch.Count);
        var recordIndex = new int[batch.Count];
        var rejections = new List<RejectionRow>();
        var stamp = LedgerEntry.FormatTime(now);
        for (var i = 0; i < batch.Count; i++)
        {
            var check = checks[i];
            if (check.Record is not null)
            {
                recordIndex[i] = records.Count;
                records.Add(check.Record);
            }
            else
            {
                recordIndex[i] = -1;
                rejections.Add(new RejectionRow(stamp, check.DeviceId, batch[i].Topic, check.Sequence, check.Reason!, check.Detail!, batch[i].Payload.Length));
                Metrics.CountRejection(check.Reason!);
            }
        }

        var outcomes = await _engine.StoreAsync(records, rejections, cancellationToken).ConfigureAwait(false);
        if (AfterStoreBeforeReceipts is { } hook)
        {
            await hook(records, cancellationToken).ConfigureAwait(false);
        }

        for (var i = 0; i < batch.Count; i++)
        {
            var check = checks[i];
            EvidenceReceipt receipt;
            if (recordIndex[i] >= 0)
            {
                var outcome = outcomes[recordIndex[i]];
                var record = records[recordIndex[i]];
                switch (outcome)
                {
                    case StoreOutcome.Stored:
                        Interlocked.Increment(ref Metrics.StoredCount);
                        receipt = new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Stored);
                        break;
                    case StoreOutcome.Duplicate:
                        Interlocked.Increment(ref Metrics.DuplicateCount);
                        receipt = new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Duplicate);
                        break;
                    default:
                        Metrics.CountRejection(RejectionRow.SequenceReused);
                        receipt = new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Rejected, RejectionRow.SequenceReused);
                        break;
                }
            }
            else if (check.Reason == RateLimited || check.ReceiptDevice is null)
            {
                // Rate-limited records are transient (no receipt: the agent resends later); without a
                // trustworthy device topic there is nobody to answer.
                continue;
            }
            else
            {
                receipt = new EvidenceReceipt(check.ReceiptDevice, check.Sequence, Convert.ToHexStringLower(check.Hash), ReceiptStatus.Rejected, check.Reason);
            }

            await _publishReceipt(EvidenceTopics.Receipts(receipt.DeviceId), receipt.Encode(), cancellationToken).ConfigureAwait(false);
        }

        foreach (var message in batch)
        {
            message.Done?.TrySetResult();
        }

        BatchCommitted?.Invoke();
    }

    private Check Verify(IncomingEvidence message, DateTimeOffset now)
    {
        var bytes = message.Payload.Span;
        if (!EvidenceTopics.TryParse(message.Topic, out var topicDevice, out var kind) || kind != "evidence")
        {
            return Check.Rejected(WrongTopic, $"'{Truncate(message.Topic)}' is not a device evidence topic", null, null, null, bytes);
        }

        // The broker authenticated the publisher; a device may only speak for itself.
        if (message.AuthenticatedDevice is not null && message.AuthenticatedDevice != topicDevice)
        {
            return Check.Rejected(TopicMismatch, $"client '{message.AuthenticatedDevice}' published on the topic of '{topicDevice}'", topicDevice, null, message.AuthenticatedDevice, bytes);
        }

        var rate = _rates.GetOrAdd(topicDevice, _ => new TokenBucket(_options.RatePerSecond, _options.Burst, now));
        if (!rate.TryTake(now))
        {
            return Check.Rejected(RateLimited, $"more than {_options.RatePerSecond}/s sustained", topicDevice, null, topicDevice, bytes);
        }

        var verification = EvidenceVerifier.Verify(bytes, KeyFor, _options.Limits);
        if (!verification.IsValid)
        {
            return Check.Rejected(verification.Reason.ToString(), verification.Detail, verification.DeviceId ?? topicDevice, null, topicDevice, bytes, verification.Hash);
        }

        var record = verification.Record!;
        if (record.DeviceId != topicDevice)
        {
            return Check.Rejected(TopicMismatch, $"record signed by '{record.DeviceId}' arrived on the topic of '{topicDevice}'", record.DeviceId, record.Sequence, topicDevice, bytes, verification.Hash);
        }

        if (record.Time < now - _options.MaxAge || record.Time > now + _options.MaxFutureSkew)
        {
            return Check.Rejected(TimeOutOfWindow, $"record time {record.Time:O} is outside [{now - _options.MaxAge:O}, {now + _options.MaxFutureSkew:O}]", record.DeviceId, record.Sequence, topicDevice, bytes, verification.Hash);
        }

        return new Check(new VerifiedRecord(record.DeviceId, record.Sequence, record.Time, verification.Hash, bytes.ToArray(), record.Readings, record.IsChainStart, record.PreviousHash.ToArray()), null, null, record.DeviceId, record.Sequence, topicDevice, verification.Hash);
    }

    private ECDsa? KeyFor(string deviceId)
    {
        var device = _engine.Device(deviceId);
        if (device is null)
        {
            return null;
        }

        _threadKeys ??= new Dictionary<string, (byte[], ECDsa)>(StringComparer.Ordinal);
        if (_threadKeys.TryGetValue(deviceId, out var cached) && cached.Spki.AsSpan().SequenceEqual(device.PublicKey))
        {
            return cached.Key;
        }

        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(device.PublicKey, out _);
        _threadKeys[deviceId] = (device.PublicKey, key);
        return key;
    }

    private static string Truncate(string text) => text.Length <= 128 ? text : text[..128] + "…";

    private readonly record struct Check(VerifiedRecord? Record, string? Reason, string? Detail, string? DeviceId, long? Sequence, string? ReceiptDevice, byte[] Hash)
    {
        public static Check Rejected(string reason, string detail, string? deviceId, long? sequence, string? receiptDevice, ReadOnlySpan<byte> bytes, byte[]? hash = null) =>
            new(null, reason, detail, deviceId, sequence, receiptDevice, hash ?? SHA256.HashData(bytes));
    }

    /// <summary>Token bucket (RFC 2697-style single rate) per device.</summary>
    private sealed class TokenBucket(double rate, double burst, DateTimeOffset start)
    {
        private readonly double _burst = burst;
        private double _tokens = burst;
        private DateTimeOffset _last = start;

        public bool TryTake(DateTimeOffset now)
        {
            lock (this)
            {
                _tokens = Math.Min(_burst, _tokens + (Math.Max(0, (now - _last).TotalSeconds) * rate));
                _last = now;
                if (_tokens < 1)
                {
                    return false;
                }

                _tokens--;
                return true;
            }
        }
    }
}

/// <summary>Ingest counters, exposed at <c>/metrics</c> (Prometheus text format) and in tests.</summary>
internal sealed class IngestMetrics
{
    public long ReceivedCount;
    public long StoredCount;
    public long DuplicateCount;
    public long RefusedByBrokerCount;

    private readonly ConcurrentDictionary<string, long> _rejections = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, long> Rejections => _rejections;

    public void CountRejection(string reason) => _rejections.AddOrUpdate(reason, 1, (_, n) => n + 1);
}
