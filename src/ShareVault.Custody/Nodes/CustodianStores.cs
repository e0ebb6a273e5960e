using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Nodes;

/// <summary>The store registry every signer and ceremony uses: local PKCS#11 and TPM custodians, and custody nodes over mutual TLS.</summary>
public static class CustodianStores
{
    public static ShareStoreRegistry Open(string dataDir) => new(dataDir, NodeShareStore.Open);
}
