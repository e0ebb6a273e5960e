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

    /// <summary>An ES256 signature (r‖s) over <paramref name="text"/> computed in the token: the operator's answer to an HTTP login challenge.</summary>
    public byte[] SignText(byte[] text) => _key.SignData(text, System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose()
    {
        _key.Dispose();
        _token.Dispose();
    }
}
