using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ShareVault.Claims.Ledger;
using ShareVault.Custody.Nodes;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;
using ShareVault.Node.Audit;
using ShareVault.Node.Guard;

namespace ShareVault.Node.Server;

/// <summary>
/// A custody node: one custodian's hardware (a PKCS#11 token or a TPM) behind Kestrel HTTPS with
/// required client certificates checked against the configured CA only. Every partial goes through
/// the guard (<see cref="SigningGuard.Check"/>), then the hardware, then <see cref="SigningGuard.Signed"/>,
/// and every request that could sign lands in the audit log.
/// </summary>
public sealed class CustodyNode : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly NodeApi _api;
    private readonly ShareStoreRegistry _stores;
    private readonly SigningGuard _guard;
    private readonly AuditLog _audit;

    private CustodyNode(WebApplication app, NodeApi api, ShareStoreRegistry stores, SigningGuard guard, AuditLog audit)
    {
        _app = app;
        _api = api;
        _stores = stores;
        _guard = guard;
        _audit = audit;
    }

    public string Custodian => _api.Custodian;

    /// <summary>Opens the hardware (PIN from the URI's pin-source), the guard and the audit log, and binds the listener.</summary>
    public static async Task<CustodyNode> StartAsync(NodeOptions options, ILoggerProvider? logs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var dataDir = Path.GetFullPath(options.DataDir);
        DurableFile.CreateDirectory(dataDir);
        var address = CustodianAddress.Parse(options.CustodianUri, "-");
        if (address.Kind == CustodianKind.Node)
        {
            throw new ArgumentException("A custody node fronts local hardware: its --custodian is a pkcs11: or tpm: URI", nameof(options));
        }

        var serverCertificate = NodeTls.LoadWithKey(options.CertificatePath, options.CertificateKeyPath);
        var clientCa = NodeTls.LoadCertificate(options.ClientCaPath);
        var adminKeys = options.AdminKeyPaths.Select(p => AdminKey.FromPem(File.ReadAllText(p))).ToList();

        var stores = new ShareStoreRegistry(dataDir);
        SigningGuard? guard = null;
        AuditLog? audit = null;
        try
        {
            var store = stores.Get(address); // opens the token or TPM now: a wrong PIN stops the node at start
            guard = new SigningGuard(new GuardOptions(dataDir, adminKeys, options.MaxPerPayout, options.MaxPerDay, options.AllowRawSigning, TimeProvider.System));
            audit = AuditLog.Open(dataDir, TimeProvider.System);
            var api = new NodeApi(address.Name, address.Kind, store, guard, audit, new ShareParameterStore(dataDir));

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            if (logs is not null)
            {
                builder.Logging.AddProvider(logs);
            }

            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddRoutingCore();
            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = 8 * 1024 * 1024;
                kestrel.Listen(options.Listen, listen => listen.UseHttps(https =>
                {
                    https.ServerCertificate = serverCertificate;
                    https.SslProtocols = SslProtocols.Tls13 | SslProtocols.Tls12;
                    https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                    https.CheckCertificateRevocation = false;
                    // Only the configured CA: a certificate the system store trusts is not enough.
                    https.ClientCertificateValidation = (certificate, _, _) => NodeTls.ChainsTo(certificate, clientCa, NodeTls.ClientAuth);
                }));
            });
            var app = builder.Build();
            api.Map(app);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
            return new CustodyNode(app, api, stores, guard, audit);
        }
        catch
        {
            audit?.Dispose();
            guard?.Dispose();
            stores.Dispose();
            throw;
        }
    }

    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _api.Dispose();
        _guard.Dispose();
        _audit.Dispose();
        _stores.Dispose();
    }
}
