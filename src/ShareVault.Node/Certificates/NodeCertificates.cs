using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ShareVault.Custody.Nodes;
using ShareVault.Hardware;

namespace ShareVault.Node.Certificates;

/// <summary>
/// Certificates for a custody network (tests, the demo, a small real deployment): a private CA,
/// one server certificate per node (id-kp-serverAuth; SAN DNS names and IP addresses) and one
/// client certificate per coordinator (id-kp-clientAuth), all P-256 / ECDSA-SHA256, made with
/// .NET's <see cref="CertificateRequest"/>. Files: <c>ca.pem</c> (certificate only), and for each
/// name <c>NAME.pem</c> and <c>NAME.key</c> (PKCS#8); private keys are written mode 0600 and the CA
/// key (<c>ca.key</c>) too, to be moved offline after issuing.
/// </summary>
public static class NodeCertificates
{
    public static readonly TimeSpan Validity = TimeSpan.FromDays(825);

    /// <summary>Writes the CA, a server certificate per node (SANs: <paramref name="hostNames"/>, default localhost and 127.0.0.1) and the coordinator's client certificate.</summary>
    public static IReadOnlyList<string> Create(string outDir, IReadOnlyList<string> nodes, string coordinator, IReadOnlyList<string>? hostNames, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentException.ThrowIfNullOrEmpty(coordinator);
        foreach (var name in nodes.Append(coordinator))
        {
            ShareVault.Evidence.Identifier.Validate(name, "Certificate name", nameof(nodes));
        }

        if (nodes.Distinct(StringComparer.Ordinal).Count() != nodes.Count || nodes.Contains(coordinator, StringComparer.Ordinal) || nodes.Contains("ca", StringComparer.Ordinal))
        {
            throw new ArgumentException("Node and coordinator names must be distinct and not 'ca'", nameof(nodes));
        }

        DurableFile.CreateDirectory(outDir);
        var now = time.GetUtcNow();
        var written = new List<string>();
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=ShareVault custody CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.Add(Validity));
        written.Add(WritePublic(outDir, "ca.pem", ca.ExportCertificatePem()));
        written.Add(WritePrivate(outDir, "ca.key", caKey.ExportPkcs8PrivateKeyPem()));

        var sans = hostNames is { Count: > 0 } ? hostNames : ["localhost", "127.0.0.1"];
        foreach (var node in nodes)
        {
            written.AddRange(Issue(outDir, node, ca, caKey, NodeTls.ServerAuth, sans, now));
        }

        written.AddRange(Issue(outDir, coordinator, ca, caKey, NodeTls.ClientAuth, [], now));
        return written;
    }

    private static IEnumerable<string> Issue(string outDir, string name, X509Certificate2 ca, ECDsa caKey, string usage, IReadOnlyList<string> sans, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], true));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false)); // RFC 5280 §4.2.1.1
        if (sans.Count > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var host in sans)
            {
                if (IPAddress.TryParse(host, out var ip))
                {
                    san.AddIpAddress(ip);
                }
                else
                {
                    san.AddDnsName(host);
                }
            }

            request.CertificateExtensions.Add(san.Build(true));
        }

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var certificate = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddMinutes(-5), now.Add(Validity), serial);
        yield return WritePublic(outDir, name + ".pem", certificate.ExportCertificatePem() + "\n");
        yield return WritePrivate(outDir, name + ".key", key.ExportPkcs8PrivateKeyPem());
    }

    private static string WritePublic(string outDir, string file, string pem)
    {
        var path = Path.Combine(outDir, file);
        DurableFile.WriteAtomic(path, System.Text.Encoding.ASCII.GetBytes(pem));
        return path;
    }

    private static string WritePrivate(string outDir, string file, string pem)
    {
        var path = Path.Combine(outDir, file);
        // Created 0600 before any key byte is written.
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, options))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite); // an existing file keeps its mode otherwise
            }

            stream.Write(System.Text.Encoding.ASCII.GetBytes(pem));
            stream.Flush(flushToDisk: true);
        }

        DurableFile.SyncDirectory(outDir);
        return path;
    }
}
