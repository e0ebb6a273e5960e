using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ShareVault.Custody.Nodes;

/// <summary>
/// Certificate checks of the custody network, both ends: a peer's certificate must chain to the one
/// configured CA and nothing else (X509ChainTrustMode.CustomRootTrust: the system store is not
/// consulted), carry the right extended key usage (RFC 5280 §4.2.1.12: id-kp-serverAuth for a node,
/// id-kp-clientAuth for a coordinator) and be within its validity. Revocation is not checked: a
/// private CA of a handful of certificates is rotated instead (README, "Running custody nodes").
/// </summary>
public static class NodeTls
{
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    /// <summary>Whether <paramref name="certificate"/> chains to <paramref name="ca"/> for <paramref name="usage"/>.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 ca, string usage, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(ca);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid(usage));
        chain.ChainPolicy.VerificationTime = (time ?? TimeProvider.System).GetUtcNow().UtcDateTime;
        chain.ChainPolicy.VerificationTimeIgnored = false;
        if (!chain.Build(certificate))
        {
            return false;
        }

        // The chain must end at the configured CA itself, not at some other root that happens to be trusted.
        var root = chain.ChainElements[^1].Certificate;
        return root.RawDataMemory.Span.SequenceEqual(ca.RawDataMemory.Span);
    }

    /// <summary>The coordinator's check of a node's server certificate: the host name matches (RFC 6125) and it chains to the node CA.</summary>
    public static bool ValidateServer(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2 ca)
    {
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            return false;
        }

        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return ChainsTo(server, ca, ServerAuth);
    }

    /// <summary>Reads a PEM certificate (the CA's) from a file.</summary>
    public static X509Certificate2 LoadCertificate(string path) => X509Certificate2.CreateFromPem(File.ReadAllText(path));

    /// <summary>
    /// Reads a certificate with its private key: a PKCS#12 file (.pfx/.p12, no password), or PEM
    /// certificate and PEM key (the key in <paramref name="keyPath"/>, else in the same file). Loaded
    /// through PKCS#12 so the key is usable by SslStream on every platform.
    /// </summary>
    public static X509Certificate2 LoadWithKey(string path, string? keyPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, null);
        }

        using var pem = X509Certificate2.CreateFromPemFile(path, keyPath);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}
