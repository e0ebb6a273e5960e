using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using ShareVault.Claims.TestSupport;

namespace ShareVault.Service.Tests;

/// <summary>A mosquitto on loopback with TLS, certificate login (use_identity_as_username) and a per-device ACL, as docs/architecture.md ("Where things run") sets it up.</summary>
internal sealed class MosquittoSite : IAsyncDisposable
{
    private readonly ECDsa _caKey;
    private readonly X509Certificate2 _caCert;
    private Process _process;

    private MosquittoSite(string dir, int port, ECDsa caKey, X509Certificate2 caCert, Process process)
    {
        Dir = dir;
        Port = port;
        _caKey = caKey;
        _caCert = caCert;
        _process = process;
    }

    public string Dir { get; }

    public int Port { get; }

    public static async Task<MosquittoSite> StartAsync(string parent)
    {
        var dir = Path.Combine(parent, "mosquitto-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var port = SimulatedDevice.FreePort();
        var ca = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=sharevault-test-ca", ca, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        var caCert = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        await File.WriteAllTextAsync(Path.Combine(dir, "ca.crt"), caCert.ExportCertificatePem());

        using var brokerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Issue(caCert, ca, "CN=localhost", brokerKey, dir, "broker", server: true).Dispose();
        using var serviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Issue(caCert, ca, "CN=sharevault-service", serviceKey, dir, "service", server: false).Dispose();

        await File.WriteAllTextAsync(Path.Combine(dir, "acl"), """
            pattern write sharevault/v1/devices/%u/evidence
            pattern readwrite sharevault/v1/devices/%u/status
            pattern read sharevault/v1/devices/%u/receipts
            user sharevault-service
            topic read sharevault/v1/devices/+/evidence
            topic read $share/sharevault/sharevault/v1/devices/+/evidence
            topic write sharevault/v1/devices/+/receipts
            """);
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        await File.WriteAllTextAsync(Path.Combine(dir, "mosquitto.conf"), $"""
            per_listener_settings false
            listener {port} 127.0.0.1
            cafile {dir}/ca.crt
            certfile {dir}/broker.crt
            keyfile {dir}/broker.key
            require_certificate true
            use_identity_as_username true
            acl_file {dir}/acl
            set_tcp_nodelay true
            autosave_interval 1
            max_queued_messages 100000
            persistence true
            persistence_location {dir}/data/
            log_dest stderr
            """);
        await ShareVault.TestSupport.ProcessRunner.RunAsync("chown", ["-R", "mosquitto", dir]);
        await ShareVault.TestSupport.ProcessRunner.RunAsync("chmod", ["755", parent]);

        var process = Process.Start(new ProcessStartInfo("mosquitto", ["-c", Path.Combine(dir, "mosquitto.conf")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var site = new MosquittoSite(dir, port, ca, caCert, process);
        try
        {
            await WaitForPortAsync(port);
            return site;
        }
        catch
        {
            await site.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the broker (SIGKILL: it keeps no persistence, so every session and subscription is gone) and starts it again on the same port.</summary>
    public async Task RestartAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = Process.Start(new ProcessStartInfo("mosquitto", ["-c", Path.Combine(Dir, "mosquitto.conf")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        await WaitForPortAsync(Port);
    }

    /// <summary>Service options subscribing to this broker as the service user, with its own client id.</summary>
    public ServiceOptions ServiceOptions(PoolKeyFixture key, string database) => IngestOverMqttTests.Options(key, database) with
    {
        MqttPort = 0,
        MqttTlsPort = 0,
        ExternalBroker = new ExternalBrokerOptions
        {
            Url = new Uri($"mqtts://localhost:{Port}"),
            ClientId = "sharevault-service-" + Guid.NewGuid().ToString("N")[..6],
            CaFile = Path.Combine(Dir, "ca.crt"),
            CertFile = Path.Combine(Dir, "service.crt"),
            KeyFile = Path.Combine(Dir, "service.key"),
        },
    };

    /// <summary>Issues the device a client certificate for its key, connects it over TLS and subscribes to its receipts.</summary>
    public async Task ConnectAsync(SimulatedDevice device)
    {
        using var certificate = Issue(_caCert, _caKey, "CN=" + device.Id, device.Key, Dir, device.Id, server: false);
        var trust = new X509Certificate2Collection(X509CertificateLoader.LoadCertificate(_caCert.RawData));
        var result = await device.ConnectAsync(Port, default, b => b.WithTlsOptions(t => t.UseTls().WithTargetHost("localhost").WithTrustChain(trust)
            .WithClientCertificates([certificate])).WithCredentials((string?)null, (byte[]?)null));
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        await device.SubscribeReceiptsAsync(default);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _caCert.Dispose();
        _caKey.Dispose();
    }

    private static X509Certificate2 Issue(X509Certificate2 caCert, ECDsa caKey, string subject, ECDsa key, string dir, string name, bool server)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        if (server)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var issued = request.Create(caCert.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), serial);
        File.WriteAllText(Path.Combine(dir, name + ".crt"), issued.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, name + ".key"), key.ExportPkcs8PrivateKeyPem());
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private static async Task WaitForPortAsync(int port)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new TimeoutException($"mosquitto did not listen on {port}");
    }
}
