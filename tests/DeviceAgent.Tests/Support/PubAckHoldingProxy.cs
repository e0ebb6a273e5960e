using System.Net;
using System.Net.Sockets;
using ShareVault.Hardware;

namespace DeviceAgent.Tests.Support;

/// <summary>
/// A TCP proxy between one MQTT client and a broker that, once the client has sent its first PUBLISH
/// on an evidence topic, holds everything the broker sends back (its PUBACKs among it) until the client
/// has sent <paramref name="release"/> such PUBLISHes or <paramref name="patience"/> has passed. A client
/// that waits for each PUBACK before its next PUBLISH can never get past one.
/// </summary>
internal sealed class PubAckHoldingProxy(int brokerPort, int release, TimeSpan patience) : IAsyncDisposable
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
        _running = Task.Run(async () =>
        {
            using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            using var broker = new TcpClient();
            await broker.ConnectAsync(IPAddress.Loopback, brokerPort, _stop.Token);
            _ = Task.Run(async () =>
            {
                await _firstEvidence.Task.WaitAsync(_stop.Token);
                await Task.WhenAny(_released.Task, Task.Delay(patience, _stop.Token));
                _released.TrySetResult();
            });
            await Task.WhenAny(ClientToBrokerAsync(client.GetStream(), broker.GetStream()), BrokerToClientAsync(broker.GetStream(), client.GetStream()));
        });
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
    private async Task ClientToBrokerAsync(Stream from, Stream to)
    {
        var header = new byte[5];
        while (!_stop.IsCancellationRequested)
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
            if (header[0] >> 4 == 3 && length >= 2)
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

    /// <summary>Forwards the broker's bytes, holding them from the client's first evidence PUBLISH until the release.</summary>
    private async Task BrokerToClientAsync(Stream from, Stream to)
    {
        var buffer = new byte[16 * 1024];
        while (!_stop.IsCancellationRequested)
        {
            var read = await from.ReadAsync(buffer, _stop.Token);
            if (read == 0)
            {
                return;
            }

            if (_firstEvidence.Task.IsCompleted)
            {
                await _released.Task.WaitAsync(_stop.Token);
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }
}
