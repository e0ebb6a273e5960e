using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using ShareVault.Claims;
using ShareVault.Claims.Payouts;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;

namespace ShareVault.Service.Tests;

/// <summary>
/// The ingest pipeline (verify stage → bounded FIFO → store stage) keeps the guarantees of a
/// sequential loop: a receipt only after its commit, stream order into the store across batches,
/// <see cref="IncomingEvidence.Done"/> only after the receipt, and a clean stop.
/// </summary>
public sealed class IngestPipelineTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public void A_batch_s_receipts_are_one_list_per_device_that_asks_and_one_message_per_record_otherwise_in_stream_order()
    {
        static EvidenceReceipt Stored(string device, int seq) => EvidenceReceipt.For(device, seq, [(byte)seq, (byte)(seq >> 8)], ReceiptStatus.Stored);
        var batch = new List<(EvidenceReceipt, bool)> { (Stored("a", 1), true), (Stored("b", 1), false), (Stored("a", 2), true), (Stored("c", 1), true), (Stored("b", 2), false) };
        batch.AddRange(Enumerable.Range(3, EvidenceReceipt.MaxListLength).Select(i => (Stored("a", i), true)));

        var messages = EvidenceIngest.ReceiptMessages(batch);

        // a's first list opens at its first receipt and fills up; b's receipts stay single; a's overflow opens a second list.
        Assert.Equal(["a", "b", "c", "b", "a"], messages.Select(m => m.DeviceId));
        Assert.True(EvidenceReceipt.TryDecodeList(messages[0].Payload, out var first));
        Assert.Equal(Enumerable.Range(1, EvidenceReceipt.MaxListLength).Select(i => (long?)i), first.Select(r => r.Sequence));
        Assert.True(EvidenceReceipt.TryDecode(messages[1].Payload, out var b1));
        Assert.Equal(1, b1!.Sequence);
        Assert.True(EvidenceReceipt.TryDecodeList(messages[2].Payload, out var c));
        Assert.Equal("c", Assert.Single(c).DeviceId);
        Assert.True(EvidenceReceipt.TryDecode(messages[3].Payload, out var b2));
        Assert.Equal(2, b2!.Sequence);
        Assert.True(EvidenceReceipt.TryDecodeList(messages[4].Payload, out var overflow));
        Assert.Equal([EvidenceReceipt.MaxListLength + 1, EvidenceReceipt.MaxListLength + 2], overflow.Select(r => r.Sequence!.Value));
    }

    [Fact]
    public async Task Receipts_follow_their_commit_and_device_order_survives_many_pipelined_batches()
    {
        await using var rig = await Rig.CreateAsync(3, new IngestOptions { BatchSize = 7 });
        var batches = 0;
        rig.Ingest.BatchCommitted += () => Interlocked.Increment(ref batches);
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        var chains = rig.Devices.Select(d => d.Quiet(start, 40)).ToList();
        var forged = (byte[])chains[1][20].Clone();
        forged[^3] ^= 0x01; // a flipped signature byte: BadSignature, receipted to pi-1
        var stream = new List<IncomingEvidence>();
        for (var s = 0; s < 40; s++)
        {
            for (var d = 0; d < rig.Devices.Count; d++)
            {
                stream.Add(rig.Message(d, chains[d][s]));
                if (d == 1 && s == 10)
                {
                    stream.Add(rig.Message(1, forged));
                }
            }
        }

        rig.Ingest.Start();
        foreach (var message in stream)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        await Task.WhenAll(stream.Select(m => m.Done!.Task)).WaitAsync(Wait);

        Assert.Empty(rig.Violations);
        Assert.True(batches > 1, $"expected many batches of at most 7, saw {batches}");
        for (var d = 0; d < rig.Devices.Count; d++)
        {
            var id = rig.Devices[d].Id;
            var stored = rig.Receipts.Where(r => r.DeviceId == id && r.Status == ReceiptStatus.Stored).Select(r => r.Sequence!.Value).ToList();
            Assert.Equal(Enumerable.Range(0, 40).Select(i => (long)i), stored); // published in stream order, each once

            // Had a later batch reached the store before an earlier one, the engine would have recorded a gap.
            Assert.Empty(rig.Engine.Gaps(id));
            Assert.Equal(39, rig.Engine.ListDevices().Single(x => x.Id == id).EvaluatedSequence);
        }

        var rejected = Assert.Single(rig.Receipts, r => r.Status == ReceiptStatus.Rejected);
        Assert.Equal(("pi-1", "BadSignature"), (rejected.DeviceId, rejected.Reason));
        Assert.Equal(1, rig.Ingest.Metrics.Rejections["BadSignature"]);
        Assert.Equal(stream.Count, rig.Ingest.Metrics.VerifiedCount);
    }

    [Fact]
    public async Task The_next_batch_is_verified_and_committed_while_the_previous_ones_receipts_are_out_and_is_receipted_after_it()
    {
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4 });
        var chain = rig.Devices[0].Quiet(DateTimeOffset.UtcNow.AddHours(-1), 8);
        var first = chain.Take(4).Select(c => rig.Message(0, c)).ToList();
        var second = chain.Skip(4).Select(c => rig.Message(0, c)).ToList();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var hooked = 0;
        rig.Ingest.AfterStoreBeforeReceipts = async (records, ct) =>
        {
            if (Interlocked.Increment(ref hooked) == 1)
            {
                held.TrySetResult();
                await release.Task.WaitAsync(ct);
            }
        };

        // Queued before the stages start, so the first batch is exactly these four.
        foreach (var message in first)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await held.Task.WaitAsync(Wait);
        foreach (var message in second)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        // The receipt stage is held after the first commit; the verify stage must still get through the
        // second batch, and the store stage commit it, while not one receipt has gone out.
        var verified = await IngestOverMqttTests.EventuallyAsync(() => rig.Ingest.Metrics.VerifiedCount, n => n == 8, Wait);
        Assert.Equal(8, verified);
        Assert.Equal(8, await IngestOverMqttTests.EventuallyAsync(() => rig.Engine.EvidenceCount(), n => n == 8, Wait));
        Assert.Empty(rig.Receipts);
        Assert.All(first.Concat(second), m => Assert.False(m.Done!.Task.IsCompleted));

        release.SetResult();
        await Task.WhenAll(first.Concat(second).Select(m => m.Done!.Task)).WaitAsync(Wait);
        Assert.Empty(rig.Violations);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (long?)i), rig.Receipts.Select(r => r.Sequence));
        Assert.Equal(8, rig.Engine.EvidenceCount());
    }

    [Fact]
    public async Task A_commit_that_fails_is_tried_again_and_ingest_goes_on()
    {
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4, StoreRetryDelay = TimeSpan.FromMilliseconds(20) });
        var chain = rig.Devices[0].Quiet(DateTimeOffset.UtcNow.AddHours(-1), 8);
        var forged = (byte[])chain[1].Clone();
        forged[^3] ^= 0x01; // rejected (BadSignature): its rejection row must be written once, not once per try

        // A real storage failure: the table the commit writes is gone until the first failure is reported.
        RenameEvidence(rig, "evidence", "evidence_away");
        var failures = new ConcurrentQueue<string>();
        rig.Ingest.StoreFailed += failure =>
        {
            if (failures.IsEmpty)
            {
                RenameEvidence(rig, "evidence_away", "evidence");
            }

            failures.Enqueue(failure);
        };
        var first = chain.Take(3).Select(c => rig.Message(0, c)).Append(rig.Message(0, forged)).ToList();
        foreach (var message in first)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await Task.WhenAll(first.Select(m => m.Done!.Task)).WaitAsync(Wait);

        var failure = Assert.Single(failures);
        Assert.StartsWith("storing 4 record(s) failed (SqliteException: ", failure, StringComparison.Ordinal);
        Assert.EndsWith("retrying in 0.02 s", failure, StringComparison.Ordinal);
        Assert.Equal(1, rig.Ingest.Metrics.StoreFailureCount);
        Assert.Equal(Enumerable.Range(0, 3).Select(i => (long?)i), rig.Receipts.Where(r => r.Status == ReceiptStatus.Stored).Select(r => r.Sequence));
        Assert.Equal(3, rig.Ingest.Metrics.StoredCount);
        Assert.Equal(1, Assert.Single(rig.Engine.RejectionCounts()).Value);
        Assert.Equal(1, rig.Ingest.Metrics.Rejections["BadSignature"]);
        Assert.Null(rig.Ingest.LastStoreError);

        // And the stage is still running.
        var second = chain.Skip(4).Select(c => rig.Message(0, c)).ToList();
        foreach (var message in second)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        await Task.WhenAll(second.Select(m => m.Done!.Task)).WaitAsync(Wait);
        Assert.Empty(rig.Violations);
    }

    [Fact]
    public async Task Receipts_that_cannot_be_published_are_sent_again_without_committing_twice()
    {
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4, StoreRetryDelay = TimeSpan.FromMilliseconds(20) });
        var chain = rig.Devices[0].Quiet(DateTimeOffset.UtcNow.AddHours(-1), 4);
        var failures = new ConcurrentQueue<string>();
        rig.Ingest.StoreFailed += failures.Enqueue;
        var calls = 0;
        rig.Ingest.AfterStoreBeforeReceipts = (records, ct) =>
            Interlocked.Increment(ref calls) <= 2 ? throw new IOException("receipts could not be published (test)") : Task.CompletedTask;
        var messages = chain.Select(c => rig.Message(0, c)).ToList();
        foreach (var message in messages)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await Task.WhenAll(messages.Select(m => m.Done!.Task)).WaitAsync(Wait);

        Assert.Equal(2, failures.Count);
        Assert.All(failures, f => Assert.StartsWith("publishing the receipts of 4 record(s) failed (IOException: receipts could not be published (test)); retrying in", f, StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(0, 4).Select(i => (long?)i), rig.Receipts.Select(r => r.Sequence));
        Assert.All(rig.Receipts, r => Assert.Equal(ReceiptStatus.Stored, r.Status)); // the commit ran once
        Assert.Equal(4, rig.Ingest.Metrics.StoredCount);
        Assert.Equal(0, rig.Ingest.Metrics.DuplicateCount);
        Assert.Empty(rig.Violations);
    }

    [Fact]
    public async Task A_batch_that_keeps_failing_is_given_up_unreceipted_and_the_next_one_is_stored()
    {
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4, StoreAttempts = 3, StoreRetryDelay = TimeSpan.FromMilliseconds(10) });
        var chain = rig.Devices[0].Quiet(DateTimeOffset.UtcNow.AddHours(-1), 8);
        RenameEvidence(rig, "evidence", "evidence_away");
        rig.Ingest.StoreFailed += failure =>
        {
            if (failure.Contains("gave them up", StringComparison.Ordinal))
            {
                RenameEvidence(rig, "evidence_away", "evidence");
            }
        };
        var first = chain.Take(4).Select(c => rig.Message(0, c)).ToList();
        foreach (var message in first)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.WhenAll(first.Select(m => m.Done!.Task)).WaitAsync(Wait));
        Assert.Equal(3, rig.Ingest.Metrics.StoreFailureCount);
        Assert.Equal(4, rig.Ingest.Metrics.AbandonedCount);
        Assert.Contains("no such table: evidence", rig.Ingest.LastStoreError, StringComparison.Ordinal);
        Assert.Empty(rig.Receipts);

        var second = chain.Skip(4).Select(c => rig.Message(0, c)).ToList();
        foreach (var message in second)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        // The next batch is stored (held by the gap the given-up one left, which its senders will fill).
        await Task.WhenAll(second.Select(m => m.Done!.Task)).WaitAsync(Wait);
        Assert.Equal(Enumerable.Range(4, 4).Select(i => (long?)i), rig.Receipts.Select(r => r.Sequence));
        Assert.Equal(4, rig.Engine.EvidenceCount());
        Assert.Null(rig.Ingest.LastStoreError);
    }

    [Fact]
    public async Task A_failing_commit_is_retried_after_the_doubling_delay_of_the_time_provider_and_a_stop_ends_the_wait()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4, StoreAttempts = 6, StoreRetryDelay = TimeSpan.FromSeconds(1), StoreRetryDelayMax = TimeSpan.FromSeconds(3) }, clock);
        try
        {
            var messages = rig.Devices[0].Quiet(clock.GetUtcNow().AddHours(-1), 4).Select(c => rig.Message(0, c)).ToList();
            RenameEvidence(rig, "evidence", "evidence_away");
            var failures = new ConcurrentQueue<string>();
            rig.Ingest.StoreFailed += failures.Enqueue;
            foreach (var message in messages)
            {
                await rig.Ingest.SubmitAsync(message, default);
            }

            rig.Ingest.Start();
            Assert.Equal(1, await IngestOverMqttTests.EventuallyAsync(() => failures.Count, n => n == 1, Wait));
            Assert.EndsWith("retrying in 1 s", failures.Last(), StringComparison.Ordinal);

            // Nothing is tried again until the clock has moved the whole delay: 1 s, then 2 s, then 3 s (the cap, not 4 s).
            foreach (var (delay, next) in new[] { (1, "retrying in 2 s"), (2, "retrying in 3 s"), (3, "retrying in 3 s") })
            {
                var before = failures.Count;
                clock.Advance(TimeSpan.FromSeconds(delay) - TimeSpan.FromMilliseconds(1));
                await Task.Delay(300);
                Assert.Equal(before, failures.Count);
                clock.Advance(TimeSpan.FromMilliseconds(1));
                Assert.Equal(before + 1, await IngestOverMqttTests.EventuallyAsync(() => failures.Count, n => n == before + 1, Wait));
                Assert.EndsWith(next, failures.Last(), StringComparison.Ordinal);
            }

            // A stop while the retry waits ends the wait at once (the clock never moves again), and nothing more is tried.
            await rig.Ingest.DisposeAsync().AsTask().WaitAsync(Wait);
            Assert.Equal(4, failures.Count);
            Assert.Equal(4, rig.Ingest.Metrics.StoreFailureCount);
            Assert.All(messages, m => Assert.True(m.Done!.Task.IsCanceled, "a message never stored must not look handled"));
            Assert.Empty(rig.Receipts);
        }
        finally
        {
            await rig.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(0, 1, 10)]
    [InlineData(6, 0, 10)]
    [InlineData(6, 5, 1)]
    public void Ingest_refuses_retry_options_out_of_range(int attempts, int delaySeconds, int maxDelaySeconds)
    {
        var options = new IngestOptions { StoreAttempts = attempts, StoreRetryDelay = TimeSpan.FromSeconds(delaySeconds), StoreRetryDelayMax = TimeSpan.FromSeconds(maxDelaySeconds) };
        Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
    }

    private static void RenameEvidence(Rig rig, string from, string to)
    {
        using var connection = rig.Engine.Database.OpenReader();
        ClaimsDatabase.Execute(connection, $"ALTER TABLE {from} RENAME TO {to}");
    }

    [Fact]
    public async Task Disposing_during_a_commit_returns_and_cancels_Done_of_everything_not_receipted()
    {
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { BatchSize = 4 });
        var chain = rig.Devices[0].Quiet(DateTimeOffset.UtcNow.AddHours(-1), 12);
        var messages = chain.Select(c => rig.Message(0, c)).ToList();
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        rig.Ingest.AfterStoreBeforeReceipts = async (records, ct) =>
        {
            held.TrySetResult();
            await Task.Delay(Timeout.Infinite, ct); // a crash between commit and receipts
        };
        foreach (var message in messages.Take(4))
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await held.Task.WaitAsync(Wait);
        foreach (var message in messages.Skip(4))
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        Assert.Equal(12, await IngestOverMqttTests.EventuallyAsync(() => rig.Ingest.Metrics.VerifiedCount, n => n == 12, Wait));
        await rig.Ingest.DisposeAsync().AsTask().WaitAsync(Wait);

        Assert.All(messages, m => Assert.True(m.Done!.Task.IsCanceled, "a message that was never receipted must not look handled"));
        Assert.Empty(rig.Receipts);
        // The held batch was committed, and batches behind it may have committed too (commits overlap
        // receipts); none was receipted, so their senders send them again and get duplicates.
        Assert.InRange(rig.Engine.EvidenceCount(), 4, 12);
    }

    [Fact]
    public async Task Rate_limited_records_are_counted_and_stored_as_rejections_without_receipts_and_complete_Done()
    {
        var now = DateTimeOffset.UtcNow;
        await using var rig = await Rig.CreateAsync(1, new IngestOptions { RatePerSecond = 1, Burst = 3 }, new ManualClock(now));
        var messages = rig.Devices[0].Quiet(now.AddMinutes(-10), 5).Select(c => rig.Message(0, c, receipted: false)).ToList();
        foreach (var message in messages)
        {
            await rig.Ingest.SubmitAsync(message, default);
        }

        rig.Ingest.Start();
        await Task.WhenAll(messages.Select(m => m.Done!.Task)).WaitAsync(Wait);

        Assert.Empty(rig.Violations);
        Assert.Equal(3, rig.Receipts.Count(r => r.Status == ReceiptStatus.Stored));
        Assert.DoesNotContain(rig.Receipts, r => r.Status != ReceiptStatus.Stored);
        Assert.Equal(2, rig.Ingest.Metrics.Rejections[EvidenceIngest.RateLimited]);
        Assert.Equal(2, rig.Engine.Rejections(reason: EvidenceIngest.RateLimited).Count);
    }

    /// <summary>A claims engine on its own SQLite file, enrolled devices, and an ingest whose receipts are checked as they are published.</summary>
    internal sealed class Rig : IAsyncDisposable
    {
        private readonly string _folder;
        private readonly ClaimsDatabase _db;
        private readonly ConcurrentQueue<EvidenceReceipt> _receipts = new();
        private readonly ConcurrentQueue<string> _violations = new();
        private readonly ConcurrentDictionary<string, bool> _published = new(StringComparer.Ordinal);

        private Rig(string folder, ClaimsDatabase db, ClaimsEngine engine, List<SimulatedDevice> devices)
        {
            _folder = folder;
            _db = db;
            Engine = engine;
            Devices = devices;
        }

        public ClaimsEngine Engine { get; }

        public List<SimulatedDevice> Devices { get; }

        public EvidenceIngest Ingest { get; private set; } = null!;

        /// <summary>Receipts in the order they were published.</summary>
        public IReadOnlyList<EvidenceReceipt> Receipts => [.. _receipts];

        /// <summary>Guarantees seen broken while receipts were published or Done completed.</summary>
        public IReadOnlyList<string> Violations => [.. _violations];

        public static async Task<Rig> CreateAsync(int devices, IngestOptions options, TimeProvider? time = null, ClaimsOptions? claims = null)
        {
            var folder = Path.Combine(Path.GetTempPath(), "sv-pipeline-" + Guid.NewGuid().ToString("N")[..10]);
            var db = new ClaimsDatabase(Path.Combine(folder, "claims.db"));
            var engine = new ClaimsEngine(db, new UnusedSigner(), time ?? TimeProvider.System, claims);
            var rig = new Rig(folder, db, engine, [.. Enumerable.Range(0, devices).Select(i => new SimulatedDevice($"pi-{i}"))]);
            await engine.CreatePoolAsync("pool-1", "Pipeline", "EUR", "unused", 1000, default);
            await engine.AddMemberAsync("pool-1", "alice", "Alice", default);
            await engine.IssuePolicyAsync("pool-1", "alice", "pol-1", "water_leak == 1 for 10m", 100, 0, null, default);
            foreach (var device in rig.Devices)
            {
                await engine.EnrollDeviceAsync("pool-1", "alice", device.Id, device.PublicKey, default);
            }

            rig.Ingest = new EvidenceIngest(engine, rig.PublishAsync, time ?? TimeProvider.System, options);
            return rig;
        }

        /// <summary>A message from device <paramref name="device"/> whose Done checks, as it completes, that its receipt went out first.</summary>
        public IncomingEvidence Message(int device, byte[] cose, bool receipted = true)
        {
            var id = Devices[device].Id;
            var hash = Convert.ToHexStringLower(EvidenceRecord.Hash(cose));
            var done = new TaskCompletionSource(); // continuations run inline, at the moment Done completes
            _ = done.Task.ContinueWith(_ =>
            {
                if (receipted && !_published.ContainsKey(hash))
                {
                    _violations.Enqueue($"Done of {id} {hash[..8]} completed before its receipt");
                }
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously | TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            return new IncomingEvidence(EvidenceTopics.Evidence(id), cose, id) { Done = done };
        }

        public async ValueTask DisposeAsync()
        {
            await Ingest.DisposeAsync();

            foreach (var device in Devices)
            {
                await device.DisposeAsync();
            }

            Engine.Dispose();
            _db.Dispose();
            Directory.Delete(_folder, recursive: true);
        }

        private Task PublishAsync(string topic, byte[] payload, CancellationToken cancellationToken)
        {
            Assert.True(EvidenceReceipt.TryDecode(payload, out var receipt));
            Assert.Equal(EvidenceTopics.Receipts(receipt!.DeviceId), topic);

            // A read connection sees only committed transactions (WAL): what a receipt names must already be there.
            if (receipt.Status == ReceiptStatus.Stored && Engine.EvidenceRecord(receipt.DeviceId, receipt.Sequence!.Value) is null)
            {
                _violations.Enqueue($"receipt for {receipt.DeviceId}/{receipt.Sequence} published before its commit");
            }

            if (receipt.Status == ReceiptStatus.Rejected
                && Engine.Rejections(receipt.DeviceId).Count < _receipts.Count(r => r.DeviceId == receipt.DeviceId && r.Status == ReceiptStatus.Rejected) + 1)
            {
                _violations.Enqueue($"rejection receipt for {receipt.DeviceId} published before its rejection was committed");
            }

            _receipts.Enqueue(receipt);
            _published[receipt.Hash] = true;
            return Task.CompletedTask;
        }
    }

    /// <summary>These tests open no claim that gets paid, so nothing is signed.</summary>
    internal sealed class UnusedSigner : IPoolSigner
    {
        public bool Exists(string keyName) => true;

        public JsonObject Jwks(string keyName) => new() { ["keys"] = new JsonArray() };

        public Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("nothing is signed in the pipeline tests");
    }
}
