using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;
using Polly.Retry;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Ledger;
using ShareVault.Evidence;

namespace ShareVault.Service;

/// <summary>Limits ingest applies beyond the evidence format's own (<see cref="EvidenceLimits"/>).</summary>
public sealed record IngestOptions
{
    public EvidenceLimits Limits { get; init; } = EvidenceLimits.Default;

    /// <summary>
    /// Per-device sustained rate (records/s, more than zero) and burst (whole records, 1 to <see cref="int.MaxValue"/>):
    /// a token bucket per device (<see cref="DeviceRateLimits"/>); beyond it records are refused as
    /// <see cref="EvidenceIngest.RateLimited"/>, get no receipt and are retried by the agent.
    /// </summary>
    public double RatePerSecond { get; init; } = 200;

    /// <inheritdoc cref="RatePerSecond"/>
    public double Burst { get; init; } = 2000;

    /// <summary>Most records verified and committed in one transaction.</summary>
    public int BatchSize { get; init; } = 1024;

    /// <summary>
    /// Tries of one step of a batch (its commit, or publishing its receipts) before the batch is given up
    /// unreceipted (its senders retry it later); at least 1 (1: no retry).
    /// </summary>
    public int StoreAttempts { get; init; } = 6;

    /// <summary>Wait before the second try (more than zero); doubled each time up to <see cref="StoreRetryDelayMax"/>, without jitter (one writer per database).</summary>
    public TimeSpan StoreRetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between two tries; at least <see cref="StoreRetryDelay"/>.</summary>
    public TimeSpan StoreRetryDelayMax { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Messages waiting for verification before publishers are slowed down (back-pressure).</summary>
    public int QueueCapacity { get; init; } = 20_000;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first option out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BatchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(QueueCapacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(StoreAttempts);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(StoreRetryDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(StoreRetryDelayMax, StoreRetryDelay);
        if (!double.IsFinite(RatePerSecond) || RatePerSecond <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(RatePerSecond), RatePerSecond, "The per-device rate must be a positive number of records per second");
        }

        if (!double.IsFinite(Burst) || Burst < 1 || Burst > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(Burst), Burst, $"The per-device burst must be between 1 and {int.MaxValue} records");
        }
    }
}

/// <summary>Where a message came from: its topic, bytes, and the device the broker authenticated (null from an external broker).</summary>
public sealed record IncomingEvidence(string Topic, ReadOnlyMemory<byte> Payload, string? AuthenticatedDevice)
{
    /// <summary>Completed once the message is stored or rejected and receipted (external brokers acknowledge then).</summary>
    public TaskCompletionSource? Done { get; init; }

    /// <summary>
    /// The publisher accepts its receipts as lists (<see cref="EvidenceReceipt.ListProperty"/> on the
    /// PUBLISH): one message per committed batch instead of one per record.
    /// </summary>
    public bool AcceptsReceiptList { get; init; }

    /// <summary>True when a PUBLISH carries <see cref="EvidenceReceipt.ListProperty"/> = <see cref="EvidenceReceipt.ListValue"/>.</summary>
    public static bool AsksForReceiptList(MQTTnet.MqttApplicationMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        foreach (var property in message.UserProperties ?? [])
        {
            if (EvidenceReceipt.AsksForList(property.Name, property.ValueBuffer.Span))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>
/// Verifies evidence (signature under the enrolled key, device/topic match, size, rate),
/// stores accepted records with their rejections in one transaction per batch (where the engine
/// refuses records whose time it cannot accept, <see cref="ClaimsOptions.EvidenceTime"/>), and only then
/// publishes each receipt. Rejections carry a reason name (an <see cref="EvidenceRejection"/> name or
/// one of the service reasons below) that is counted (<see cref="Metrics"/>) and stored (table
/// <c>rejections</c>, HTTP <c>/evidence/rejections</c>).
/// </summary>
/// <remarks>
/// Three stages joined by bounded FIFO channels, so signatures of the next batch are checked while the
/// previous one is committed and the receipts of the one before go out: the store runs on one thread
/// and part of it is spent waiting for the <c>synchronous=FULL</c> fsync, while verification can use
/// every core:
/// <list type="number">
/// <item>verify: takes what is queued (at most <see cref="IngestOptions.BatchSize"/>; a lone message
/// does not wait for company), checks it on all cores, hands it on;</item>
/// <item>store: takes every verified batch waiting (at most <see cref="IngestOptions.BatchSize"/>
/// records in all), commits them in one transaction and hands the batch with its receipts on;</item>
/// <item>receipt: publishes the receipts of each committed batch (one message per record, or one list
/// per device that asks for lists, <see cref="ReceiptMessages"/>), completes their
/// <see cref="IncomingEvidence.Done"/> and raises <see cref="BatchCommitted"/>; a receipt never
/// leaves before the commit that backs it.</item>
/// </list>
/// One reader per stage and FIFO channels between them keep stream order into
/// <see cref="ClaimsEngine.StoreAsync(IReadOnlyList{VerifiedRecord}, IReadOnlyList{RejectionRow}, CancellationToken)"/>
/// (the engine evaluates a device in sequence order; FIFO keeps it from seeing gaps that are not there).
/// Verification depends on nothing a commit changes (dedupe and sequence checks happen inside the store), so it may run ahead;
/// receipts of batch N go out while batch N+1 commits, and still in commit order.
/// </remarks>
public sealed class EvidenceIngest : IAsyncDisposable
{
    public const string WrongTopic = "WrongTopic";
    public const string TopicMismatch = "TopicMismatch";
    /// <summary>Refused by the store for its time (<see cref="ClaimsOptions.EvidenceTime"/>); kept here beside the other reasons.</summary>
    public const string TimeOutOfWindow = RejectionRow.TimeOutOfWindow;
    public const string RateLimited = "RateLimited";

    /// <summary>
    /// Verified batches waiting for the store stage. Two let verification run a full batch ahead
    /// while the store stage can still find a second small one to commit with the first; more would
    /// only hold records (and their outbox copies) longer without adding overlap.
    /// </summary>
    private const int VerifiedDepth = 2;

    /// <summary>
    /// Committed batches waiting for their receipts. Publishing a batch's receipts (one MQTT PUBLISH
    /// each, routed by the broker) took a fifth of the store stage's time in a profile; with its own
    /// stage the next commit overlaps it. One is enough for that overlap.
    /// </summary>
    private const int CommittedDepth = 1;

    /// <summary>Receipts published at once (issued in order, then awaited together).</summary>
    private const int ReceiptWindow = 256;

    /// <summary>Which step of which batch a retry is for (its log line and <see cref="StoreFailed"/> name them).</summary>
    private static readonly ResiliencePropertyKey<(string What, int Count)> StepKey = new("sharevault.ingest.step");

    [ThreadStatic]
    private static Dictionary<string, (byte[] Spki, ECDsa Key)>? _threadKeys;

    private readonly ClaimsEngine _engine;
    private readonly Func<string, byte[], CancellationToken, Task> _publishReceipt;
    private readonly TimeProvider _time;
    private readonly IngestOptions _options;
    private readonly Channel<IncomingEvidence> _queue;
    private readonly Channel<VerifiedBatch> _verified;
    private readonly Channel<CommittedBatch> _committed;
    private readonly DeviceRateLimits _rates;
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _log;
    private readonly ResiliencePipeline _stepRetry;
    private Task? _loop;
    private int _disposed;

    public EvidenceIngest(ClaimsEngine engine, Func<string, byte[], CancellationToken, Task> publishReceipt, TimeProvider time, IngestOptions? options = null, ILogger<EvidenceIngest>? logger = null)
    {
        _log = logger ?? NullLogger<EvidenceIngest>.Instance;
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        _publishReceipt = publishReceipt ?? throw new ArgumentNullException(nameof(publishReceipt));
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _options = options ?? new IngestOptions();
        _options.Validate();
        _stepRetry = StepRetry(_options, _time, OnStepRetryAsync);
        Metrics.ObserveChainBreaks(() => _engine.ChainBreakCount);
        _rates = new DeviceRateLimits(_options.RatePerSecond, (int)_options.Burst);
        _queue = Channel.CreateBounded<IncomingEvidence>(new BoundedChannelOptions(_options.QueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _verified = Channel.CreateBounded<VerifiedBatch>(new BoundedChannelOptions(VerifiedDepth) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        _committed = Channel.CreateBounded<CommittedBatch>(new BoundedChannelOptions(CommittedDepth) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
    }

    internal IngestMetrics Metrics { get; } = new();

    /// <summary>Records rejected so far, by reason name.</summary>
    public IReadOnlyDictionary<string, long> Rejections => Metrics.Rejections;

    /// <summary>Test seam: runs after a batch is committed and before its receipts go out (a crash here must lose nothing).</summary>
    public Func<IReadOnlyList<VerifiedRecord>, CancellationToken, Task>? AfterStoreBeforeReceipts { get; set; }

    /// <summary>Raised (on the receipt stage) after each batch is stored and receipted; the host uses it to run payouts.</summary>
    public event Action? BatchCommitted;

    /// <summary>Raised with a one-line description (no payload, no secret) each time a batch fails to store.</summary>
    public event Action<string>? StoreFailed;

    /// <summary>The last store failure, until a batch stores again (shown by <c>/health</c>).</summary>
    public string? LastStoreError { get; private set; }

    public void Start()
    {
        _loop ??= Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Queues a message; waits when the queue is full, so a fast publisher is slowed rather than dropped.</summary>
    public ValueTask SubmitAsync(IncomingEvidence message, CancellationToken cancellationToken)
    {
        Metrics.Received();
        return _queue.Writer.WriteAsync(message, cancellationToken);
    }

    /// <summary>
    /// Stops both stages without waiting for the queue to drain: a batch being committed finishes its
    /// commit (SQLite is not interrupted), receipts not yet sent are not sent, and every message not
    /// fully handled has its <see cref="IncomingEvidence.Done"/> cancelled. Nothing is lost: the agent
    /// keeps a record in its outbox until it sees a receipt, and an external broker redelivers what was not acknowledged.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        _queue.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
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
        }
        finally
        {
            while (_verified.Reader.TryRead(out var batch))
            {
                Abandon(batch.Messages);
            }

            while (_committed.Reader.TryRead(out var committed))
            {
                foreach (var part in committed.Parts)
                {
                    Abandon(part.Messages);
                }
            }

            while (_queue.Reader.TryRead(out var message))
            {
                Abandon([message]);
            }

            _stop.Dispose();
            Metrics.Dispose();
            _rates.Dispose();
        }
    }

    /// <summary>Verifies, stores, then receipts one batch, outside the pipeline. For tests and the benchmark.</summary>
    public async Task ProcessBatchAsync(IReadOnlyList<IncomingEvidence> batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (await StoreAsync([VerifyBatch(batch, cancellationToken)], retry: false, cancellationToken).ConfigureAwait(false) is { } committed)
        {
            await ReceiptAsync(committed, retry: false, cancellationToken).ConfigureAwait(false);
        }
    }

    private static void Abandon(IEnumerable<IncomingEvidence> messages)
    {
        foreach (var message in messages)
        {
            message.Done?.TrySetCanceled();
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        // If one stage fails the other must not wait for it forever (the verifier on a full channel, the store on an empty one).
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var verify = Task.Run(() => VerifyStageAsync(failed.Token), CancellationToken.None);
        var store = Task.Run(() => StoreStageAsync(failed.Token), CancellationToken.None);
        var receipt = Task.Run(() => ReceiptStageAsync(failed.Token), CancellationToken.None);
        var stages = new List<Task> { verify, store, receipt };
        while (stages.Count > 0)
        {
            var ended = await Task.WhenAny(stages).ConfigureAwait(false);
            stages.Remove(ended);
            if (ended.IsFaulted)
            {
                await failed.CancelAsync().ConfigureAwait(false);
            }
        }

        await Task.WhenAll(verify, store, receipt).ConfigureAwait(false);
    }

    private async Task VerifyStageAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await _queue.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Adaptive batching: take what is queued now, up to BatchSize; when idle a batch is one message.
                var batch = new List<IncomingEvidence>(Math.Min(_options.BatchSize, _queue.Reader.Count));
                while (batch.Count < _options.BatchSize && _queue.Reader.TryRead(out var message))
                {
                    batch.Add(message);
                }

                try
                {
                    var verified = VerifyBatch(batch, cancellationToken);
                    await _verified.Writer.WriteAsync(verified, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    Abandon(batch);
                    throw;
                }
            }

            _verified.Writer.TryComplete();
        }
        catch (Exception e)
        {
            _verified.Writer.TryComplete(e is OperationCanceledException ? null : e);
            throw;
        }
    }

    private async Task StoreStageAsync(CancellationToken cancellationToken)
    {
        try
        {
            var parts = new List<VerifiedBatch>();
            while (await _verified.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // Commit everything already verified in one transaction (one fsync), up to BatchSize records;
                // a batch that would go past it waits for the next transaction, still in order.
                parts.Clear();
                var count = 0;
                while (_verified.Reader.TryPeek(out var next) && (parts.Count == 0 || count + next.Messages.Count <= _options.BatchSize) && _verified.Reader.TryRead(out next))
                {
                    parts.Add(next);
                    count += next.Messages.Count;
                }

                try
                {
                    if (await StoreAsync([.. parts], retry: true, cancellationToken).ConfigureAwait(false) is { } committed)
                    {
                        await _committed.Writer.WriteAsync(committed, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch
                {
                    foreach (var part in parts)
                    {
                        Abandon(part.Messages);
                    }

                    throw;
                }
            }

            _committed.Writer.TryComplete();
        }
        catch (Exception e)
        {
            _committed.Writer.TryComplete(e is OperationCanceledException ? null : e);
            throw;
        }
    }

    /// <summary>Publishes the receipts of committed batches in commit order (one reader: per-device receipt order is stream order).</summary>
    private async Task ReceiptStageAsync(CancellationToken cancellationToken)
    {
        while (await _committed.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_committed.Reader.TryRead(out var committed))
            {
                try
                {
                    await ReceiptAsync(committed, retry: true, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    foreach (var part in committed.Parts)
                    {
                        Abandon(part.Messages);
                    }

                    throw;
                }
            }
        }
    }

    /// <summary>
    /// The retry of one step of a batch (Polly, driven by <paramref name="time"/>): up to
    /// <see cref="IngestOptions.StoreAttempts"/> tries, waiting <see cref="IngestOptions.StoreRetryDelay"/>
    /// doubled each time up to <see cref="IngestOptions.StoreRetryDelayMax"/>. Every exception is
    /// retried (database unreachable, disk full, a lock time-out, a broker that refuses the receipts)
    /// except the cancellation of a stop, which ends the wait at once.
    /// </summary>
    internal static ResiliencePipeline StepRetry(IngestOptions options, TimeProvider time, Func<OnRetryArguments<object>, ValueTask> onRetry)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.StoreAttempts == 1)
        {
            return ResiliencePipeline.Empty;
        }

        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = options.StoreAttempts - 1,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = options.StoreRetryDelay,
                MaxDelay = options.StoreRetryDelayMax,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } e && !(e is OperationCanceledException && args.Context.CancellationToken.IsCancellationRequested)),
                OnRetry = onRetry,
            })
            .Build();
    }

    /// <summary>
    /// Runs one step of a batch (its commit, or publishing its receipts). With <paramref name="retry"/>
    /// a failure does not stop ingest: the step is tried again (<see cref="StepRetry"/>), and after
    /// <see cref="IngestOptions.StoreAttempts"/> tries it is given up (<c>Done</c> false), so one bad
    /// batch cannot hold the stream. Each failure is counted (<see cref="IngestMetrics.StoreFailureCount"/>),
    /// logged with its exception, reported (<see cref="StoreFailed"/>) and shown in <see cref="LastStoreError"/>.
    /// Without it the first failure is thrown (<see cref="ProcessBatchAsync"/>).
    /// </summary>
    private async Task<(bool Done, T? Value)> StepAsync<T>(string what, int count, bool retry, Func<CancellationToken, Task<T>> step, CancellationToken cancellationToken)
    {
        if (!retry)
        {
            return (true, await step(cancellationToken).ConfigureAwait(false));
        }

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(StepKey, (what, count));
        try
        {
            var value = await _stepRetry.ExecuteAsync(static async (ctx, run) => await run(ctx.CancellationToken).ConfigureAwait(false), context, step).ConfigureAwait(false);
            return (true, value);
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            StepFailed(what, count, e, _options.StoreAttempts, retryIn: null);
            return (false, default);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private ValueTask OnStepRetryAsync(OnRetryArguments<object> args)
    {
        var (what, count) = args.Context.Properties.GetValue(StepKey, ("?", 0));
        StepFailed(what, count, args.Outcome.Exception!, args.AttemptNumber + 1, args.RetryDelay);
        return ValueTask.CompletedTask;
    }

    /// <summary>Counts, logs and reports one failed try; <paramref name="retryIn"/> null means the step is given up.</summary>
    private void StepFailed(string what, int count, Exception e, int attempt, TimeSpan? retryIn)
    {
        Metrics.StoreFailed();
        LastStoreError = $"{e.GetType().Name}: {e.Message}";

        // Counts and the step's name only: the records themselves are evidence payloads.
        if (retryIn is not { } delay)
        {
            _log.LogError(e, "Ingest {Step} of {Count} record(s) failed {Attempts} times; given up unreceipted, their senders will retry", what, count, attempt);
            StoreFailed?.Invoke($"{what} {count} record(s) failed {attempt} times ({LastStoreError}); gave them up unreceipted, their senders will retry");
            return;
        }

        _log.LogWarning(e, "Ingest {Step} of {Count} record(s) failed (attempt {Attempt} of {Attempts}); retrying in {Delay}", what, count, attempt, _options.StoreAttempts, delay);
        StoreFailed?.Invoke($"{what} {count} record(s) failed ({LastStoreError}); retrying in {delay.TotalSeconds.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)} s");
    }

    /// <summary>Checks every message of a batch; signature checks dominate, so they are spread over the cores.</summary>
    private VerifiedBatch VerifyBatch(IReadOnlyList<IncomingEvidence> batch, CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var checks = new Check[batch.Count];

        // Per-thread key caches keep each ECDsa on one thread.
        Parallel.For(0, batch.Count, new ParallelOptions { CancellationToken = cancellationToken }, i => checks[i] = Verify(batch[i], now));
        Metrics.Verified(batch.Count);
        return new VerifiedBatch(batch, checks, LedgerEntry.FormatTime(now));
    }

    /// <summary>
    /// Commits the records and rejections of <paramref name="parts"/> (in order) in one transaction
    /// and prepares their receipts; <see cref="ReceiptAsync"/> then publishes them, completes their
    /// <see cref="IncomingEvidence.Done"/> and raises <see cref="BatchCommitted"/>, so no receipt
    /// leaves before the commit that backs it. Each step is retried on its own (<see cref="StepAsync"/>):
    /// a commit that succeeded is never repeated because its receipts could not be sent, so
    /// rejections and counters are recorded once. A batch given up is left unreceipted, <c>Done</c>
    /// cancelled (an external broker redelivers it, an agent resends it; what did commit then comes
    /// back as a duplicate); null is returned for it.
    /// </summary>
    private async Task<CommittedBatch?> StoreAsync(IReadOnlyList<VerifiedBatch> parts, bool retry, CancellationToken cancellationToken)
    {
        var records = new List<VerifiedRecord>();
        var rejections = new List<RejectionRow>();
        var recordIndex = new List<int>();
        foreach (var (messages, checks, stamp) in parts)
        {
            for (var i = 0; i < messages.Count; i++)
            {
                var check = checks[i];
                if (check.Record is not null)
                {
                    recordIndex.Add(records.Count);
                    records.Add(check.Record);
                }
                else
                {
                    recordIndex.Add(-1);
                    rejections.Add(new RejectionRow(stamp, check.DeviceId, messages[i].Topic, check.Sequence, check.Reason!, check.Detail!, messages[i].Payload.Length));
                }
            }
        }

        var count = recordIndex.Count;
        var (stored, outcomes) = await StepAsync("storing", count, retry, ct => _engine.StoreAsync(records, rejections, ct), cancellationToken).ConfigureAwait(false);
        if (!stored)
        {
            GiveUp(parts, count);
            return null;
        }

        foreach (var rejection in rejections)
        {
            Metrics.CountRejection(rejection.Reason);
        }

        var receipts = new List<(EvidenceReceipt Receipt, bool AsList)>(count);
        var n = 0;
        foreach (var (messages, checks, _) in parts)
        {
            for (var i = 0; i < messages.Count; i++, n++)
            {
                if (Receipt(checks[i], recordIndex[n] >= 0 ? outcomes![recordIndex[n]] : null) is { } receipt)
                {
                    receipts.Add((receipt, messages[i].AcceptsReceiptList));
                }
            }
        }

        return new CommittedBatch(parts, records, receipts, count);
    }

    /// <summary>Publishes a committed batch's receipts, then completes its messages and raises <see cref="BatchCommitted"/>.</summary>
    private async Task ReceiptAsync(CommittedBatch committed, bool retry, CancellationToken cancellationToken)
    {
        var (parts, records, receipts, count) = committed;
        var (published, _) = await StepAsync("publishing the receipts of", count, retry, async ct =>
        {
            if (AfterStoreBeforeReceipts is { } hook)
            {
                await hook(records, ct).ConfigureAwait(false);
            }

            // Issued in order, up to ReceiptWindow at a time: over an external broker each QoS 1 PUBLISH
            // waits for its PUBACK, and one at a time that round trip, not the commit, set the pace (a
            // profile of serve behind mosquitto). The agent matches receipts by hash, not by order.
            var messages = ReceiptMessages(receipts);
            var inFlight = new List<Task>(Math.Min(ReceiptWindow, messages.Count));
            foreach (var (deviceId, payload) in messages)
            {
                inFlight.Add(_publishReceipt(EvidenceTopics.Receipts(deviceId), payload, ct));
                if (inFlight.Count == ReceiptWindow)
                {
                    await Task.WhenAll(inFlight).ConfigureAwait(false);
                    inFlight.Clear();
                }
            }

            await Task.WhenAll(inFlight).ConfigureAwait(false);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        if (!published)
        {
            GiveUp(parts, count);
            return;
        }

        LastStoreError = null; // stored and receipted: whatever failed before has recovered
        foreach (var part in parts)
        {
            foreach (var message in part.Messages)
            {
                message.Done?.TrySetResult();
            }
        }

        BatchCommitted?.Invoke();
    }

    /// <summary>
    /// The receipt messages of a committed batch, in stream order: one per record, except that the
    /// receipts of a device that accepts lists are gathered into one list (<see cref="EvidenceReceipt.EncodeList"/>)
    /// at the place of its first, a new one every <see cref="EvidenceReceipt.MaxListLength"/>. A list
    /// costs the broker and the device one message where single receipts cost one per record.
    /// </summary>
    internal static List<(string DeviceId, byte[] Payload)> ReceiptMessages(IReadOnlyList<(EvidenceReceipt Receipt, bool AsList)> receipts)
    {
        var slots = new List<(string DeviceId, EvidenceReceipt? Single, List<EvidenceReceipt>? List)>(receipts.Count);
        var open = new Dictionary<string, List<EvidenceReceipt>>(StringComparer.Ordinal);
        foreach (var (receipt, asList) in receipts)
        {
            if (!asList)
            {
                slots.Add((receipt.DeviceId, receipt, null));
                continue;
            }

            if (!open.TryGetValue(receipt.DeviceId, out var list) || list.Count == EvidenceReceipt.MaxListLength)
            {
                list = [];
                open[receipt.DeviceId] = list;
                slots.Add((receipt.DeviceId, null, list));
            }

            list.Add(receipt);
        }

        return slots.ConvertAll(slot => (slot.DeviceId, slot.Single?.Encode() ?? EvidenceReceipt.EncodeList(slot.List!)));
    }

    private void GiveUp(IReadOnlyList<VerifiedBatch> parts, int count)
    {
        Metrics.Abandoned(count);
        foreach (var part in parts)
        {
            Abandon(part.Messages);
        }
    }

    /// <summary>The receipt for one message once its batch is committed, or null when nobody is to be answered.</summary>
    private EvidenceReceipt? Receipt(Check check, StoreOutcome? outcome)
    {
        if (check.Record is { } record)
        {
            switch (outcome)
            {
                case StoreOutcome.Stored:
                    Metrics.Stored();
                    return new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Stored);
                case StoreOutcome.Duplicate:
                    Metrics.Duplicate();
                    return new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Duplicate);
                default:
                    var reason = RejectionRow.ReasonOf(outcome!.Value)!;
                    Metrics.CountRejection(reason);
                    return new EvidenceReceipt(record.DeviceId, record.Sequence, Convert.ToHexStringLower(record.Hash), ReceiptStatus.Rejected, reason);
            }
        }

        if (check.Reason == RateLimited || check.ReceiptDevice is null)
        {
            // Rate-limited records are transient (no receipt: the agent resends later); without a
            // trustworthy device topic there is nobody to answer.
            return null;
        }

        return new EvidenceReceipt(check.ReceiptDevice, check.Sequence, Convert.ToHexStringLower(check.Hash), ReceiptStatus.Rejected, check.Reason);
    }

    private Check Verify(IncomingEvidence message, DateTimeOffset now)
    {
        var bytes = message.Payload.Span;
        if (!EvidenceTopics.TryParse(message.Topic, out var topicDevice, out var kind) || kind != EvidenceTopicKind.Evidence)
        {
            return Check.Rejected(WrongTopic, $"'{Truncate(message.Topic)}' is not a device evidence topic", null, null, null, bytes);
        }

        // The broker authenticated the publisher; a device may only speak for itself.
        if (message.AuthenticatedDevice is not null && message.AuthenticatedDevice != topicDevice)
        {
            return Check.Rejected(TopicMismatch, $"client '{message.AuthenticatedDevice}' published on the topic of '{topicDevice}'", topicDevice, null, message.AuthenticatedDevice, bytes);
        }

        if (!_rates.TryTake(topicDevice))
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

        // The record's time (around its arrival, after the device's previous record) is checked by the
        // store, in the transaction that sees the device's stored neighbours (ClaimsOptions.EvidenceTime).
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

    /// <summary>A batch as the verify stage hands it on: the messages, one check each (same order), and the time they were checked.</summary>
    private sealed record VerifiedBatch(IReadOnlyList<IncomingEvidence> Messages, Check[] Checks, string Stamp);

    /// <summary>Batches committed in one transaction, with the receipts to publish for them (in stream order).</summary>
    private sealed record CommittedBatch(IReadOnlyList<VerifiedBatch> Parts, IReadOnlyList<VerifiedRecord> Records, IReadOnlyList<(EvidenceReceipt Receipt, bool AsList)> Receipts, int Count);

    private readonly record struct Check(VerifiedRecord? Record, string? Reason, string? Detail, string? DeviceId, long? Sequence, string? ReceiptDevice, byte[] Hash)
    {
        public static Check Rejected(string reason, string detail, string? deviceId, long? sequence, string? receiptDevice, ReadOnlySpan<byte> bytes, byte[]? hash = null) =>
            new(null, reason, detail, deviceId, sequence, receiptDevice, hash ?? SHA256.HashData(bytes));
    }
}
