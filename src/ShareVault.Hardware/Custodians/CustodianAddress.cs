using ShareVault.Hardware.Pkcs11;


namespace ShareVault.Hardware.Custodians;

/// <summary>
/// Where a custodian's key lives, parsed from its URI: <c>pkcs11:token=NAME;object=LABEL?…</c>
/// (RFC 7512) or <c>tpm:object=NAME?tcti=…</c>. The custodian's name is the token label (PKCS#11)
/// or the object name (TPM). A custody node is <c>https://HOST:PORT?custodian=NAME&amp;object=LABEL&amp;…</c>
/// (<see cref="NodeUri"/>); its name is the <c>custodian</c> parameter, else the host. The URI holds no
/// secret, only where to find it (pin-source, certificate files).
/// </summary>
public sealed record CustodianAddress(string Name, string Uri, string ObjectLabel, CustodianKind Kind)
{
    /// <summary>Parses a custodian URI; <paramref name="keyName"/> labels the key when the URI names no object.</summary>
    public static CustodianAddress Parse(string uri, string keyName)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (Pkcs11Uri.IsPkcs11(uri))
        {
            var parsed = Pkcs11Uri.Parse(uri);
            var label = parsed.ObjectLabel ?? keyName;
            return new CustodianAddress(parsed.Token!, parsed.WithObject(label), label, CustodianKind.Pkcs11);
        }

        if (uri.StartsWith("tpm:", StringComparison.OrdinalIgnoreCase))
        {
            var name = TpmObjectName(uri);
            return new CustodianAddress(name, uri, keyName, CustodianKind.Tpm);
        }

        if (NodeUri.IsNode(uri))
        {
            var node = NodeUri.Parse(uri);
            return new CustodianAddress(node.Custodian, uri, node.ObjectLabel ?? keyName, CustodianKind.Node);
        }

        throw new ShareStoreException(ShareStoreError.BadUri, "A custodian URI starts with 'pkcs11:', 'tpm:' or 'https://' (a custody node)");
    }

    private static string TpmObjectName(string uri)
    {
        var body = uri["tpm:".Length..];
        var q = body.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? body : body[..q];
        foreach (var part in path.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("object=", StringComparison.Ordinal))
            {
                return System.Uri.UnescapeDataString(part["object=".Length..]);
            }
        }

        throw new ShareStoreException(ShareStoreError.BadUri, "A TPM custodian URI must name its object (tpm:object=NAME?tcti=…)");
    }

    public override string ToString() => $"{Name} ({Kind.ToText()})";
}
