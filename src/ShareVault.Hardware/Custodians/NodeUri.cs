namespace ShareVault.Hardware.Custodians;

/// <summary>
/// A custody node's address: <c>https://HOST:PORT?custodian=NAME&amp;object=LABEL&amp;client-cert=PEM&amp;client-key=PEM&amp;node-ca=PEM</c>.
/// <c>custodian</c> names the custodian (default: the host), <c>object</c> the key label on the node
/// (default: the key name). The coordinator's client certificate and key and the CA that issued
/// the node's server certificate are files named by <c>client-cert</c>, <c>client-key</c> and
/// <c>node-ca</c>, else by the environment variables <c>SHAREVAULT_NODE_CLIENT_CERT</c>,
/// <c>SHAREVAULT_NODE_CLIENT_KEY</c> and <c>SHAREVAULT_NODE_CA</c>. Paths only: no secret in the URI.
/// </summary>
public sealed record NodeUri(Uri BaseAddress, string Custodian, string? ObjectLabel, string? ClientCertificatePath, string? ClientKeyPath, string? NodeCaPath)
{
    public const string ClientCertificateVariable = "SHAREVAULT_NODE_CLIENT_CERT";
    public const string ClientKeyVariable = "SHAREVAULT_NODE_CLIENT_KEY";
    public const string NodeCaVariable = "SHAREVAULT_NODE_CA";

    private static readonly string[] Known = ["custodian", "object", "client-cert", "client-key", "node-ca"];

    public static bool IsNode(string uri) => uri.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    public static NodeUri Parse(string uri)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (!IsNode(uri) || !System.Uri.TryCreate(uri, UriKind.Absolute, out var parsed) || parsed.Port <= 0)
        {
            throw new ShareStoreException(ShareStoreError.BadUri, "A custody node URI is https://HOST:PORT[?custodian=NAME&object=LABEL&client-cert=FILE&client-key=FILE&node-ca=FILE]");
        }

        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in parsed.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? pair : pair[..eq];
            if (!Known.Contains(name, StringComparer.Ordinal))
            {
                throw new ShareStoreException(ShareStoreError.BadUri, $"Unknown custody node URI parameter '{name}' (known: {string.Join(", ", Known)})");
            }

            query[name] = System.Uri.UnescapeDataString(eq < 0 ? string.Empty : pair[(eq + 1)..]);
        }

        var custodian = query.GetValueOrDefault("custodian") is { Length: > 0 } c ? c : parsed.Host;
        return new NodeUri(
            new Uri($"https://{parsed.Authority}/"),
            custodian,
            query.GetValueOrDefault("object") is { Length: > 0 } o ? o : null,
            query.GetValueOrDefault("client-cert") ?? Environment.GetEnvironmentVariable(ClientCertificateVariable),
            query.GetValueOrDefault("client-key") ?? Environment.GetEnvironmentVariable(ClientKeyVariable),
            query.GetValueOrDefault("node-ca") ?? Environment.GetEnvironmentVariable(NodeCaVariable));
    }
}
