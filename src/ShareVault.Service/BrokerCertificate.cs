using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ShareVault.Service;

/// <summary>
/// The embedded broker's TLS identity: a self-signed ECDSA P-256 certificate for localhost and
/// 127.0.0.1, created once under DATA_DIR/broker (key file readable by the owner only). Devices pin
/// its SHA-256 fingerprint, printed by <c>sharevault serve</c>; give your own with a real CA in the field.
/// </summary>
internal static class BrokerCertificate
{
    public static X509Certificate2 LoadOrCreate(string folder, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Directory.CreateDirectory(folder);
        var certPath = Path.Combine(folder, "broker.crt");
        var keyPath = Path.Combine(folder, "broker.key");
        if (!File.Exists(certPath) || !File.Exists(keyPath))
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=sharevault-broker", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(System.Net.IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
            var now = time.GetUtcNow();
            using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(5));
            var keyTemp = keyPath + ".tmp";
            using (var stream = new FileStream(keyTemp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(keyTemp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }

                using var writer = new StreamWriter(stream);
                writer.Write(key.ExportPkcs8PrivateKeyPem());
            }

            File.Move(keyTemp, keyPath, overwrite: true);
            File.WriteAllText(certPath, certificate.ExportCertificatePem());
        }

        // SslStream on Linux wants a certificate whose key it can use directly: round-trip through PKCS#12.
        using var loaded = X509Certificate2.CreateFromPemFile(certPath, keyPath);
        return X509CertificateLoader.LoadPkcs12(loaded.Export(X509ContentType.Pkcs12), null);
    }
}
