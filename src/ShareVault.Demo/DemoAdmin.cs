using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;

namespace ShareVault.Demo;

/// <summary>
/// The pool operator's key: P-256 inside its own SoftHSM token (made once, reopened after), never
/// given to the claims service. The nodes are started with its public key (<see cref="PemFile"/>)
/// and accept only registry changes (pool, policies, premiums, devices) it signed.
/// </summary>
internal sealed class DemoAdmin : IDisposable
{
    private readonly Pkcs11DeviceKey _token;
    private readonly HardwareECDsa _key;

    public DemoAdmin(string tokenUri, string pemFile)
    {
        _token = Pkcs11DeviceKey.Open(tokenUri, create: true);
        _key = new HardwareECDsa(_token);
        Key = AdminKey.FromSubjectPublicKeyInfo(_key.ExportSubjectPublicKeyInfo());
        Directory.CreateDirectory(Path.GetDirectoryName(pemFile)!);
        File.WriteAllText(pemFile, Key.ToPem() + "\n");
        PemFile = pemFile;
    }

    public AdminKey Key { get; }

    public string PemFile { get; }

    /// <summary>The detached signature (<see cref="AdminSignature"/>) over a registry change's body, computed in the token.</summary>
    public JsonObject Sign(string kind, JsonObject body) => AdminSignature.Sign(_key, DemoRun.Pool, kind, body);

    public void Dispose()
    {
        _key.Dispose();
        _token.Dispose();
    }
}
