using System.Net;
using System.Net.Sockets;
using ShareVault.Hardware;

namespace DeviceAgent.Tests.Support;

/// <summary>
/// A TCP proxy between an MQTT client and a broker that, once the client has sent its first PUBLISH on
/// an evidence topic over its first connection, holds everything the broker sends back on that
/// connection (its PUBACKs among it) until the client has sent <paramref name="release"/> such PUBLISHes
/// or <paramref name="patience"/> has passed. A client that waits for each PUBACK before its next
/// PUBLISH can never get past one. With <paramref name="swallowPubAcks"/> it instead drops every PUBACK
/// the broker sends on that connection from then on, and passes everything else (PINGRESPs, receipts):
/// a broker that is alive but never acknowledges. Later connections pass straight through.
/// </summary>
internal sealed class PubAckHoldingProxy(int brokerPort, int release, TimeSpan patience, bool swallowPubAcks = false) : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, LoopbackPorts.Reserve());
    private readonly TaskCompletionSource _firstEvidence = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private int _evidencePublishes;
    private Task? _running;

    public Uri Uri => new($"mqtt://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    /// <summary>Evidence PUBLISHes the client had sent when the held bytes were let through.</summary>
    public Task<int> ReleasedAfter => _released.Task.ContinueWith(_ => Volatile.Read(ref _evidencePublishes), TaskScheduler.Default);

    public void Start()
    {
        _listener.Start();
        _ = Task.Run(async () =>
        {
            await _firstEvidence.Task.WaitAsync(_stop.Token);
            await Task.WhenAny(_released.Task, Task.Delay(patience, _stop.Token));
            _released.TrySetResult();
        });
        _running = Task.Run(async () =>
        {
            var relays = new List<Task>();
            try
            {
                for (var first = true; !_stop.IsCancellationRequested; first = false)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    relays.Add(RelayAsync(client, holding: first));
                }
            }
            catch (OperationCanceledException)
            {
                // Disposed.
            }

            await Task.WhenAll(relays);
        });
    }

    /// <summary>Connections the client has made through the proxy.</summary>
    public int Connections { get; private set; }

    private async Task RelayAsync(TcpClient client, bool holding)
    {
        Connections++;
        using (client)
        using (var broker = new TcpClient())
        {
            try
            {
                await broker.ConnectAsync(IPAddress.Loopback, brokerPort, _stop.Token);
                await Task.WhenAny(ClientToBrokerAsync(client.GetStream(), broker.GetStream(), holding), BrokerToClientAsync(broker.GetStream(), client.GetStream(), holding));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException)
            {
                // The client, the broker or the test ended the connection.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        if (_running is not null)
        {
            await Task.WhenAny(_running, Task.Delay(TimeSpan.FromSeconds(5)));
        }

        _stop.Dispose();
    }

    /// <summary>Forwards at once, one MQTT packet at a time (fixed header, variable-length remaining length, MQTT 5 §2.1), counting evidence PUBLISHes.</summary>
    private async Task ClientToBrokerAsync(Stream from, Stream to, bool holding)
    {
        var header = new byte[5];
        while (!_stop.IsCancellationRequested)
        {
            var (used, body) = await ReadPacketAsync(from, header);
            var length = body.Length;
            if (holding && header[0] >> 4 == 3 && length >= 2)
            {
                var topic = System.Text.Encoding.UTF8.GetString(body, 2, Math.Min((body[0] << 8) | body[1], length - 2));
                if (topic.EndsWith("/evidence", StringComparison.Ordinal))
                {
                    _firstEvidence.TrySetResult();
                    if (Interlocked.Increment(ref _evidencePublishes) >= release)
                    {
                        _released.TrySetResult();
                    }
                }
            }

            await to.WriteAsync(header.AsMemory(0, used), _stop.Token);
            await to.WriteAsync(body, _stop.Token);
        }
    }

    /// <summary>One MQTT packet: its fixed header (in <paramref name="header"/>, <c>used</c> bytes long) and its body.</summary>
    private async Task<(int Used, byte[] Body)> ReadPacketAsync(Stream from, byte[] header)
    {
        await from.ReadExactlyAsync(header.AsMemory(0, 1), _stop.Token);
        int length = 0, shift = 0, used = 1;
        do
        {
            await from.ReadExactlyAsync(header.AsMemory(used, 1), _stop.Token);
            length |= (header[used] & 0x7F) << shift;
            shift += 7;
        }
        while ((header[used++] & 0x80) != 0);
        var body = new byte[length];
        await from.ReadExactlyAsync(body, _stop.Token);
        return (used, body);
    }

    /// <summary>Forwards the broker's bytes; on the held connection, holds them (or drops its PUBACKs) from the client's first evidence PUBLISH on.</summary>
    private async Task BrokerToClientAsync(Stream from, Stream to, bool holding)
    {
        if (holding && swallowPubAcks)
        {
            var header = new byte[5];
            while (!_stop.IsCancellationRequested)
            {
                var (used, body) = await ReadPacketAsync(from, header);
                if (header[0] >> 4 == 4 && _firstEvidence.Task.IsCompleted)
                {
                    continue; // PUBACK (MQTT 5 §3.4)
                }

                await to.WriteAsync(header.AsMemory(0, used), _stop.Token);
                await to.WriteAsync(body, _stop.Token);
            }

            return;
        }

        var buffer = new byte[16 * 1024];
        while (!_stop.IsCancellationRequested)
        {
            var read = await from.ReadAsync(buffer, _stop.Token);
            if (read == 0)
            {
                return;
            }

            if (holding && _firstEvidence.Task.IsCompleted)
            {
                await _released.Task.WaitAsync(_stop.Token);
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }
}
