using ShareVault.Hardware.Pkcs11;
using ShareVault.TestSupport;


namespace ShareVault.Hardware.Tests.Pkcs11;

/// <summary>The store contract on a real SoftHSM2 token.</summary>
public sealed class SoftHsmShareStoreContractTests : ShareStoreContract
{
    private const string Token = "custody-d";

    // SoftHSM checks a PIN only at C_Login and login state is per process and token, so a wrong PIN
    // is only observable on a token nobody in this process logs in to (SoftHsm.Labels).
    private const string ProbeToken = "wrong-pin-probe";

    protected override IShareStore OpenStore() => Pkcs11ShareStore.Open(Pkcs11Uri.Parse(SoftHsm.Shared.Uri(Token)));

    protected override void UseWithWrongAuth(string label, byte[] input)
    {
        var wrongPin = Path.Combine(SoftHsm.Shared.Directory, $"wrong-{Guid.NewGuid():N}.pin");
        File.WriteAllText(wrongPin, "not-the-pin\n");
        var uri = $"pkcs11:token={ProbeToken}?module-path={SoftHsm.ModulePath}&pin-source=file:{wrongPin}";
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(uri));
        store.RsaRawPrivate(label, input);
    }
}
