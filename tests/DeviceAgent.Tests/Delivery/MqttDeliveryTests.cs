using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DeviceAgent.Delivery;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using ShareVault.Evidence;
using ShareVault.Hardware;
using ShareVault.TestSupport;

namespace DeviceAgent.Tests.Delivery;

/// <summary>Delivery against a real MQTT 5 broker (embedded MQTTnet server) and a receipt-answering service.</summary>
public sealed class MqttDeliveryTests : IDisposable
{
    private const string DeviceId = "pi-flood-7";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        _key.Dispose();
        _dir.Dispose();
    }

    private EmbeddedBroker NewBroker() => new(id => id == DeviceId ? _key : null);

    /// <summary>One agent process: its outbox, state, pipeline and delivery over the shared data folder.</summary>
    private sealed class Agent : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _running;

        public Agent(string dataDir, ECDsa key, Uri broker, TimeSpan? ackTimeout = null)
        {
            Outbox = Outbox.Open(Path.Combine(dataDir, "outbox"));
            Pipeline = new AgentPipeline(DeviceId, [new CountingThermometer()], key, SequenceState.Open(dataDir, Outbox), Outbox, TimeProvider.System);
            Delivery = new MqttDelivery(DeviceId, new BrokerOptions
            {
                Uri = broker,
                ResendAfter = TimeSpan.FromSeconds(1),
                MinBackoff = TimeSpan.FromMilliseconds(50),
                MaxBackoff = TimeSpan.FromMilliseconds(400),
                KeepAlive = TimeSpan.FromSeconds(5),
                AckTimeout = ackTimeout ?? TimeSpan.FromSeconds(15),
            }, Outbox, TimeProvider.System);
            _running = Task.Run(() => Delivery.RunAsync(_stop.Token));
        }

        public Outbox Outbox { get; }

        public AgentPipeline Pipeline { get; }

        public MqttDelivery Delivery { get; }

        public void Record(int count)
        {
            for (var i = 0; i < count; i++)
            {
                Pipeline.CaptureNow();
            }
        }

        /// <summary>Dies like a killed process: no DISCONNECT, no offline status, nothing flushed beyond what is already on disk.</summary>
        public async Task KillAsync()
        {
            Delivery.Kill();
            await _stop.CancelAsync();
            await _running.WaitAsync(Patience);
            Pipeline.Dispose();
            Outbox.Dispose();
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _running.WaitAsync(Patience);
            await Delivery.DisposeAsync();
            Pipeline.Dispose();
            Outbox.Dispose();
            _stop.Dispose();
        }
    }

    private static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting until " + what);
            }

            await Task.Delay(25);
        }
    }

    private void AssertEverySequenceStoredOnceAndChained(EmbeddedBroker broker, int count)
    {
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), broker.Stored.Keys.Order());
        for (var seq = 2L; seq <= count; seq++)
        {
            var record = EvidenceVerifier.Verify(broker.Stored[seq], _ => _key).Record!;
            Assert.True(record.Follows(broker.Stored[seq - 1]), $"record {seq} does not chain to {seq - 1}");
        }
    }

    [Fact]
    public async Task Every_record_is_stored_once_and_the_outbox_drains_after_receipts()
    {
        await using var broker = NewBroker();
        await broker.StartAsync();
        await using var agent = new Agent(_dir.Path, _key, broker.Uri);

        agent.Record(25);

        await Eventually(() => agent.Outbox.Count == 0, "the outbox drains");
        AssertEverySequenceStoredOnceAndChained(broker, 25);
        Assert.Equal(25, agent.Outbox.Released);
    }

    [Fact]
    public async Task Records_waiting_in_the_outbox_go_out_without_waiting_for_each_other_s_PUBACK()
    {
        const int Records = 10;
        await using var broker = NewBroker();
        await broker.StartAsync();

        // The proxy is not listening yet: the agent retries while its records wait in the outbox.
        await using var proxy = new PubAckHoldingProxy(broker.Port, release: Records, patience: TimeSpan.FromSeconds(10));
        await using var agent = new Agent(_dir.Path, _key, proxy.Uri);
        agent.Record(Records);
        proxy.Start();

        // One record per PUBACK round trip would leave the proxy holding the first PUBACK until its patience ran out, at 1.
        Assert.Equal(Records, await proxy.ReleasedAfter.WaitAsync(Patience));
        await Eventually(() => agent.Outbox.Count == 0, "the outbox drains");
        AssertEverySequenceStoredOnceAndChained(broker, Records);
    }

    [Fact]
    public async Task A_connection_whose_pubacks_do_not_come_in_time_is_closed_and_delivery_goes_on_over_a_new_one()
    {
        await using var broker = NewBroker();
        await broker.StartAsync();

        // On the first connection, no PUBACK for evidence ever reaches the agent; the broker's PINGRESPs and
        // receipts do, so the connection stays up and its first records are released. Later connections pass.
        await using var proxy = new PubAckHoldingProxy(broker.Port, release: int.MaxValue, patience: TimeSpan.FromMinutes(10), swallowPubAcks: true);
        proxy.Start();
        await using var agent = new Agent(_dir.Path, _key, proxy.Uri, ackTimeout: TimeSpan.FromSeconds(1));
        agent.Record(3);

        await Eventually(() => agent.Outbox.Count == 0, "the records are receipted");
        agent.Record(3);
        await Eventually(() => agent.Outbox.Count == 0 && broker.Stored.Count == 6, "the later records are stored");
        Assert.True(proxy.Connections >= 2, $"{proxy.Connections} connection(s): the one without PUBACKs was not replaced");
        AssertEverySequenceStoredOnceAndChained(broker, 6);
    }

    [Fact]
    public async Task A_broker_that_accepts_the_connection_but_never_answers_connect_is_given_up_on_and_tried_again()
    {
        // Takes TCP connections and never says a word, like a hung broker behind a load balancer.
        var port = LoopbackPorts.Reserve();
        var silent = new TcpListener(IPAddress.Loopback, port);
        silent.Start();
        var accepted = new ConcurrentBag<TcpClient>();
        var accepting = Task.Run(async () =>
        {
            while (true)
            {
                accepted.Add(await silent.AcceptTcpClientAsync());
            }
        });
        try
        {
            await using var agent = new Agent(_dir.Path, _key, new Uri($"mqtt://127.0.0.1:{port}"), ackTimeout: TimeSpan.FromSeconds(1));
            agent.Record(1);
            await Eventually(() => accepted.Count >= 3, "the agent gives up on a silent connection and connects again");
            Assert.Equal(0, agent.Delivery.Connections);
            Assert.Equal(1, agent.Outbox.Count);
        }
        finally
        {
            silent.Stop();
            await Task.WhenAny(accepting);
            foreach (var client in accepted)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task Broker_acknowledgement_alone_does_not_empty_the_outbox()
    {
        await using var broker = NewBroker();
        broker.Responding = false; // the service is down; the broker still PUBACKs
        await broker.StartAsync();
        await using var agent = new Agent(_dir.Path, _key, broker.Uri);

        agent.Record(5);
        await Eventually(() => broker.Arrivals.Distinct().Count() == 5 && agent.Delivery.Published >= 5, "the broker has accepted all five");
        await Task.Delay(300);
        Assert.Equal(5, agent.Outbox.Count);

        broker.Responding = true;
        await Eventually(() => agent.Outbox.Count == 0, "receipts drain the outbox");
        AssertEverySequenceStoredOnceAndChained(broker, 5);
        Assert.True(broker.Arrivals.Count > 5, "records were resent after the receipt timeout");
    }

    [Fact]
    public async Task Records_made_while_the_broker_is_down_arrive_when_it_comes_up()
    {
        await using var broker = NewBroker();
        await using var agent = new Agent(_dir.Path, _key, broker.Uri);

        agent.Record(10);
        await Task.Delay(700); // several failed connection attempts with back-off
        Assert.Equal(0, agent.Delivery.Connections);
        Assert.Equal(10, agent.Outbox.Count);

        await broker.StartAsync();
        await Eventually(() => agent.Outbox.Count == 0, "the outbox drains");
        AssertEverySequenceStoredOnceAndChained(broker, 10);
    }

    [Fact]
    public async Task Broker_restart_mid_stream_loses_nothing()
    {
        await using var broker = NewBroker();
        await broker.StartAsync();
        await using var agent = new Agent(_dir.Path, _key, broker.Uri);

        agent.Record(10);
        await Eventually(() => broker.Stored.Count >= 3, "some records are stored");
        await broker.StopAsync();
        agent.Record(10);
        await Task.Delay(300);
        await broker.StartAsync();
        agent.Record(10);

        await Eventually(() => agent.Outbox.Count == 0 && broker.Stored.Count == 30, "all thirty are stored");
        AssertEverySequenceStoredOnceAndChained(broker, 30);
        Assert.True(agent.Delivery.Connections >= 2);
    }

    [Fact]
    public async Task Agent_killed_and_restarted_mid_stream_resends_what_was_not_receipted()
    {
        await using var broker = NewBroker();
        await broker.StartAsync();
        var first = new Agent(_dir.Path, _key, broker.Uri);
        first.Record(10);
        broker.Responding = false; // receipts for the next records never reach the first agent
        first.Record(5);
        await Eventually(() => broker.Arrivals.Distinct().Count() >= 15, "the broker saw all fifteen");
        await first.KillAsync();
        broker.Responding = true;

        await using var second = new Agent(_dir.Path, _key, broker.Uri);
        Assert.True(second.Outbox.Count >= 5, $"{second.Outbox.Count} unreceipted record(s) survived the kill");
        second.Record(5);

        await Eventually(() => second.Outbox.Count == 0 && broker.Stored.Count == 20, "all twenty are stored");
        AssertEverySequenceStoredOnceAndChained(broker, 20);
    }

    [Fact]
    public async Task Service_rejection_moves_the_record_aside_and_delivery_continues()
    {
        await using var broker = NewBroker();
        broker.RejectSequences.Add(2);
        await broker.StartAsync();
        await using var agent = new Agent(_dir.Path, _key, broker.Uri);

        agent.Record(3);

        await Eventually(() => agent.Outbox.Count == 0, "the outbox is empty");
        Assert.Equal([1L, 3L], broker.Stored.Keys.Order());
        Assert.Equal(1, agent.Outbox.Rejected);
        Assert.Single(Directory.GetFiles(Path.Combine(_dir.Path, "outbox", "rejected")));
    }

    [Fact]
    public async Task Status_is_retained_online_and_the_last_will_says_offline_when_the_agent_dies()
    {
        await using var broker = NewBroker();
        await broker.StartAsync();
        var agent = new Agent(_dir.Path, _key, broker.Uri);
        var topic = EvidenceTopics.Status(DeviceId);
        await Eventually(() => broker.Retained.TryGetValue(topic, out var s) && DeviceStatus.TryDecode(s, out var d) && d!.Online, "status says online");

        await agent.KillAsync();

        await Eventually(() => broker.Retained.TryGetValue(topic, out var s) && DeviceStatus.TryDecode(s, out var d) && !d!.Online, "the last will says offline");
    }

    // Reconnect waits (Polly on the agent's TimeProvider), on virtual time: the waits are read from the
    // timers the retry creates (TimerWatchingTime), and time moves only when the test advances it.

    [Fact]
    public async Task Reconnect_waits_double_up_to_the_cap_each_failure_is_logged_and_a_stop_ends_the_wait()
    {
        var time = new TimerWatchingTime();
        var logs = new FakeLogCollector();
        using var outbox = Outbox.Open(_dir.Sub("outbox"));

        // A reserved loopback port nothing listens on: every connect is refused at once.
        var options = Options(new Uri($"mqtt://127.0.0.1:{LoopbackPorts.Reserve()}"));
        await using var delivery = new MqttDelivery(DeviceId, options, outbox, time, new FakeLogger<MqttDelivery>(logs));
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);

        foreach (var seconds in new[] { 1, 2, 4, 8, 8 })
        {
            var wait = await time.NextWaitAsync();
            Assert.Equal(TimeSpan.FromSeconds(seconds), wait);
            time.Advance(wait);
        }

        // The sixth wait is pending on virtual time that never moves again: only the stop can end it.
        Assert.Equal(TimeSpan.FromSeconds(8), await time.NextWaitAsync());
        Assert.False(running.IsCompleted);
        await stop.CancelAsync();
        await running.WaitAsync(Patience);
        Assert.Equal(0, delivery.Connections);

        var failures = logs.GetSnapshot().Where(r => r.Level == LogLevel.Warning).ToList();
        Assert.Equal(6, failures.Count);
        Assert.All(failures, r => Assert.NotNull(r.Exception));
        Assert.All(failures, r => Assert.Contains("reconnecting in", r.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lost_connection_waits_the_first_delay_and_the_back_off_starts_again_after_a_connection()
    {
        var time = new TimerWatchingTime();
        using var outbox = Outbox.Open(_dir.Sub("outbox"));
        await using var broker = new EmbeddedBroker(id => id == DeviceId ? _key : null);
        await broker.StartAsync();
        await using var delivery = new MqttDelivery(DeviceId, Options(broker.Uri), outbox, time);
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);
        await Eventually(() => delivery.Connections == 1 && delivery.IsConnected, "connected");

        // The broker goes away: the lost connection counts as the first failure (no tight reconnect loop).
        await broker.StopAsync();
        Assert.Equal(TimeSpan.FromSeconds(1), await time.NextWaitAsync());
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(TimeSpan.FromSeconds(2), await time.NextWaitAsync());

        // Back before the next try: it connects, and the next loss waits the first delay again.
        await broker.StartAsync();
        time.Advance(TimeSpan.FromSeconds(2));
        await Eventually(() => delivery.Connections == 2 && delivery.IsConnected, "reconnected");
        await broker.StopAsync();
        Assert.Equal(TimeSpan.FromSeconds(1), await time.NextWaitAsync());

        await stop.CancelAsync();
        await running.WaitAsync(Patience);
    }

    [Fact]
    public void Reconnect_options_out_of_range_are_refused_by_name()
    {
        var uri = new Uri("mqtt://127.0.0.1:1883");
        Assert.Equal("MinBackoff", Assert.Throws<ArgumentOutOfRangeException>(() => (Options(uri) with { MinBackoff = TimeSpan.Zero }).Validate()).ParamName);
        Assert.Equal("MaxBackoff", Assert.Throws<ArgumentOutOfRangeException>(() => (Options(uri) with { MaxBackoff = TimeSpan.FromMilliseconds(500) }).Validate()).ParamName);
    }

    private static BrokerOptions Options(Uri uri) => new()
    {
        Uri = uri,
        MinBackoff = TimeSpan.FromSeconds(1),
        MaxBackoff = TimeSpan.FromSeconds(8),
        ReconnectJitter = false,
        KeepAlive = TimeSpan.FromSeconds(5),
    };
}
