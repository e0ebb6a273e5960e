using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;


namespace ShareVault.Hardware.Tests.Tpm;

/// <summary>The store contract on a real swtpm (its own instance for this class).</summary>
public sealed class TpmShareStoreContractTests(Swtpm swtpm, TempDataDir data) : ShareStoreContract, IClassFixture<Swtpm>, IClassFixture<TempDataDir>
{
    protected override IShareStore OpenStore() => TpmShareStore.Open(swtpm.Uri("custody-t"), data.Path);

    protected override void UseWithWrongAuth(string label, byte[] input)
    {
        using var store = TpmShareStore.Open(swtpm.Uri("custody-t", auth: "wrong-auth"), data.Path);
        store.RsaRawPrivate(label, input);
    }
}
