namespace ShareVault.Hardware.Pkcs11;

/// <summary>
/// An RFC 7512 PKCS#11 URI, e.g.
/// <c>pkcs11:token=custody-a;object=pool-1?module-path=/usr/lib/softhsm/libsofthsm2.so&amp;pin-source=file:/run/pin</c>.
/// Path attributes (§2.3) are separated by ';', query attributes by '&amp;'; values are percent-decoded.
/// <c>pin-value</c> is refused: a PIN never travels in a URI that may be logged.
/// </summary>
public sealed class Pkcs11Uri
{
    /// <summary>Used when the URI names no module; overridable with SHAREVAULT_PKCS11_MODULE.</summary>
    public const string DefaultModulePath = "/usr/lib/softhsm/libsofthsm2.so";

    private Pkcs11Uri(IReadOnlyDictionary<string, string> path, IReadOnlyDictionary<string, string> query)
    {
        Path = path;
        Query = query;
    }

    public IReadOnlyDictionary<string, string> Path { get; }

    public IReadOnlyDictionary<string, string> Query { get; }

    public string? Token => Path.GetValueOrDefault("token");

    public string? ObjectLabel => Path.GetValueOrDefault("object");

    public string ModulePath => Query.GetValueOrDefault("module-path")
        ?? Environment.GetEnvironmentVariable("SHAREVAULT_PKCS11_MODULE")
        ?? DefaultModulePath;

    public string? PinSource => Query.GetValueOrDefault("pin-source");

    public static bool IsPkcs11(string uri) => uri.StartsWith("pkcs11:", StringComparison.OrdinalIgnoreCase);

    public static Pkcs11Uri Parse(string uri)
    {
        ArgumentNullException.ThrowIfNull(uri);
        if (!IsPkcs11(uri))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, "A PKCS#11 URI starts with 'pkcs11:' (RFC 7512)");
        }

        var body = uri["pkcs11:".Length..];
        var q = body.IndexOf('?', StringComparison.Ordinal);
        var pathPart = q < 0 ? body : body[..q];
        var queryPart = q < 0 ? string.Empty : body[(q + 1)..];
        var path = ParseAttributes(pathPart, ';');
        var query = ParseAttributes(queryPart, '&');
        if (query.ContainsKey("pin-value"))
        {
            throw new ShareStoreException(ShareStoreError.BadUri,
                "pin-value is not accepted in a PKCS#11 URI: use pin-source=file:PATH or pin-source=env:NAME");
        }

        if (string.IsNullOrEmpty(path.GetValueOrDefault("token")))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, "A custodian's PKCS#11 URI must name its token (token=LABEL)");
        }

        return new Pkcs11Uri(path, query);
    }

    /// <summary>The same URI with another object label (the key of a given pool).</summary>
    public string WithObject(string objectLabel)
    {
        var path = new Dictionary<string, string>(Path, StringComparer.Ordinal) { ["object"] = objectLabel };
        return Format(path, Query);
    }

    public override string ToString() => Format(Path, Query);

    private static string Format(IReadOnlyDictionary<string, string> path, IReadOnlyDictionary<string, string> query)
    {
        var text = "pkcs11:" + string.Join(';', path.Select(kv => kv.Key + "=" + Escape(kv.Value)));
        if (query.Count > 0)
        {
            text += "?" + string.Join('&', query.Select(kv => kv.Key + "=" + Escape(kv.Value)));
        }

        return text;
    }

    // RFC 7512 §2.3: pchar plus '/', ':' and '@' may stand unescaped in values.
    private static string Escape(string value) =>
        string.Concat(value.Select(c => char.IsAsciiLetterOrDigit(c) || "-._~:@/!$'()*+,".Contains(c, StringComparison.Ordinal)
            ? c.ToString()
            : Uri.EscapeDataString(c.ToString())));

    private static Dictionary<string, string> ParseAttributes(string text, char separator)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in text.Split(separator, StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new ShareStoreException(ShareStoreError.BadUri, $"PKCS#11 URI attribute without a value: '{part}'");
            }

            var name = part[..eq].ToLowerInvariant();
            if (!result.TryAdd(name, Uri.UnescapeDataString(part[(eq + 1)..])))
            {
                throw new ShareStoreException(ShareStoreError.BadUri, $"PKCS#11 URI attribute '{name}' appears twice");
            }
        }

        return result;
    }
}
