using System.Net;

namespace ShareVault.Node.Server;

/// <summary>
/// How <c>sharevault node run</c> is configured: its data folder (audit log, guard replicas, Shoup
/// share parameters, TPM key blobs), the one custodian URI whose hardware it fronts (PIN from the
/// URI's pin-source, as for a local custodian), where it listens, its server certificate (PKCS#12,
/// or PEM with the key in <see cref="CertificateKeyPath"/> or the same file), the CA whose client
/// certificates it accepts, the pool administrators' public keys and its own limits.
/// </summary>
public sealed record NodeOptions(
    string DataDir,
    string CustodianUri,
    IPEndPoint Listen,
    string CertificatePath,
    string? CertificateKeyPath,
    string ClientCaPath,
    IReadOnlyList<string> AdminKeyPaths,
    long MaxPerPayout,
    long MaxPerDay,
    bool AllowRawSigning);
