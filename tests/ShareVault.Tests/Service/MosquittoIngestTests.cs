using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using ShareVault.Evidence;
using ShareVault.Service;
using ShareVault.Tests.Support;

namespace ShareVault.Tests.Service;

/// <summary>The ingest flow against a real mosquitto (TLS, certificate login with use_identity_as_username, per-device ACL).</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class MosquittoIngestTests(PoolKeyFixture key)
{
    [Fact]
    public async Task A_leak_through_mosquitto_yields_exactly_one_claim_and_one_payout()
    {
        var dir = Path.Combine(key.DataDir, "mosquitto-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var port = SimulatedDevice.FreePort();
        await using var device = new SimulatedDevice("pi-mosq-1");
        using var ca = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=sharevault-test-ca", ca, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var caCert = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        await File.WriteAllTextAsync(Path.Combine(dir, "ca.crt"), caCert.ExportCertificatePem());

        using var brokerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Issue(caCert, ca, "CN=localhost", brokerKey, dir, "broker", server: true);
        using var serviceKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Issue(caCert, ca, "CN=sharevault-service", serviceKey, dir, "service", server: false);
        var deviceCert = Issue(caCert, ca, "CN=" + device.Id, device.Key, dir, "device", server: false);

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
        await ShareVault.TestSupport.ProcessRunner.RunAsync("chmod", ["755", key.DataDir]);

        using var mosquitto = Process.Start(new ProcessStartInfo("mosquitto", ["-c", Path.Combine(dir, "mosquitto.conf")]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        try
        {
            await WaitForPortAsync(port);
            var options = IngestOverMqttTests.Options(key) with
            {
                MqttPort = 0,
                MqttTlsPort = 0,
                ExternalBroker = new ExternalBrokerOptions
                {
                    Url = new Uri($"mqtts://localhost:{port}"),
                    ClientId = "sharevault-service-" + Guid.NewGuid().ToString("N")[..6],
                    CaFile = Path.Combine(dir, "ca.crt"),
                    CertFile = Path.Combine(dir, "service.crt"),
                    KeyFile = Path.Combine(dir, "service.key"),
                },
            };
            await using var host = await ClaimsHost.StartAsync(options, key.Signer(), TimeProvider.System, default);
            await IngestOverMqttTests.SetUpPoolAsync(host.Engine, key.KeyName, device);

            var trust = new X509Certificate2Collection(X509CertificateLoader.LoadCertificate(caCert.RawData));
            var result = await device.ConnectAsync(port, default, b => b.WithTlsOptions(t => t.UseTls().WithTargetHost("localhost").WithTrustChain(trust)
                .WithClientCertificates([deviceCert])).WithCredentials((string?)null, (byte[]?)null));
            Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
            await device.SubscribeReceiptsAsync(default);
            var records = device.Leak(DateTimeOffset.UtcNow.AddMinutes(-30), wetMinutes: 12);
            foreach (var record in records)
            {
                await device.PublishAsync(record, default);
            }

            var receipts = await device.WaitForReceiptsAsync(records, TimeSpan.FromSeconds(30));
            Assert.All(receipts, r => Assert.Equal(ReceiptStatus.Stored, r.Status));
            var payouts = await IngestOverMqttTests.EventuallyAsync(() => host.Engine.ListPayouts(), p => p.Count > 0, TimeSpan.FromSeconds(30));
            Assert.Single(payouts);
            Assert.Single(host.Engine.ListClaims());
        }
        finally
        {
            mosquitto.Kill();
            await mosquitto.WaitForExitAsync();
        }
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
