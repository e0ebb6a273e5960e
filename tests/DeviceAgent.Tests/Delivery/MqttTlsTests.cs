using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DeviceAgent.Delivery;
using DeviceAgent.Storage;
using DeviceAgent.Tests.Support;

namespace DeviceAgent.Tests.Delivery;

/// <summary>TLS to the broker with a pinned CA (the embedded MQTTnet server on a TLS-only endpoint).</summary>
public sealed class MqttTlsTests : IDisposable
{
    private const string DeviceId = "pi-tls-1";
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly TempDir _dir = new();

    public void Dispose()
    {
        _key.Dispose();
        _dir.Dispose();
    }

    private static X509Certificate2 NewCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
    }

    private static X509Certificate2 NewServerCertificate(X509Certificate2 ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=broker", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(10), [1, 2, 3, 4]);
        using var withKey = signed.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so SslStream gets a persisted private key on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private string WritePem(X509Certificate2 certificate, string name)
    {
        var path = _dir.Sub(name);
        File.WriteAllText(path, certificate.ExportCertificatePem());
        return path;
    }

    private async Task<(Outbox Outbox, MqttDelivery Delivery)> DeliverAsync(EmbeddedBroker broker, string caFile, TimeSpan duration, int records)
    {
        var outbox = Outbox.Open(_dir.Sub("outbox-" + Guid.NewGuid().ToString("N")[..6]));
        var state = SequenceState.Open(_dir.Sub("state-" + Guid.NewGuid().ToString("N")[..6]), outbox);
        using var pipeline = new AgentPipeline(DeviceId, [new CountingThermometer()], _key, state, outbox, TimeProvider.System);
        for (var i = 0; i < records; i++)
        {
            pipeline.CaptureNow();
        }

        var delivery = new MqttDelivery(DeviceId, new BrokerOptions
        {
            Uri = broker.Uri,
            CaFile = caFile,
            MinBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(300),
        }, outbox, TimeProvider.System);
        using var stop = new CancellationTokenSource();
        var running = delivery.RunAsync(stop.Token);
        var deadline = DateTime.UtcNow + duration;
        while (DateTime.UtcNow < deadline && outbox.Count > 0)
        {
            await Task.Delay(50);
        }

        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(20));
        return (outbox, delivery);
    }

    [Fact]
    public async Task Broker_certificate_from_the_pinned_ca_is_accepted_and_records_are_delivered()
    {
        using var ca = NewCa("sharevault-test-ca");
        using var serverCertificate = NewServerCertificate(ca);
        await using var broker = new EmbeddedBroker(id => id == DeviceId ? _key : null, serverCertificate);
        await broker.StartAsync();

        var (outbox, delivery) = await DeliverAsync(broker, WritePem(ca, "ca.pem"), TimeSpan.FromSeconds(20), 3);

        Assert.Equal(0, outbox.Count);
        Assert.Equal([1L, 2L, 3L], broker.Stored.Keys.Order());
        Assert.True(delivery.Connections >= 1);
        outbox.Dispose();
        await delivery.DisposeAsync();
    }

    [Fact]
    public async Task Broker_certificate_from_another_ca_is_refused_and_nothing_leaves_the_outbox()
    {
        using var ca = NewCa("sharevault-test-ca");
        using var otherCa = NewCa("someone-else");
        using var serverCertificate = NewServerCertificate(ca);
        await using var broker = new EmbeddedBroker(id => id == DeviceId ? _key : null, serverCertificate);
        await broker.StartAsync();

        var (outbox, delivery) = await DeliverAsync(broker, WritePem(otherCa, "other-ca.pem"), TimeSpan.FromSeconds(1.5), 2);

        Assert.Equal(0, delivery.Connections);
        Assert.Equal(2, outbox.Count);
        Assert.Empty(broker.Arrivals);
        outbox.Dispose();
        await delivery.DisposeAsync();
    }

    [Fact]
    public void Pinning_rejects_name_mismatch_and_unknown_roots()
    {
        using var ca = NewCa("pinned");
        using var other = NewCa("other");
        using var server = NewServerCertificate(ca);
        var pinned = new X509Certificate2Collection(ca);

        Assert.True(MqttDelivery.ValidatePinned(server, SslPolicyErrors.RemoteCertificateChainErrors, pinned));
        Assert.False(MqttDelivery.ValidatePinned(server, SslPolicyErrors.RemoteCertificateNameMismatch, pinned));
        Assert.False(MqttDelivery.ValidatePinned(server, SslPolicyErrors.None, new X509Certificate2Collection(other)));
        Assert.False(MqttDelivery.ValidatePinned(null, SslPolicyErrors.RemoteCertificateNotAvailable, pinned));
    }
}
