using System.Text;

namespace ShareVault.Hardware;

/// <summary>
/// Where a PIN or auth value comes from: <c>file:/path</c> (RFC 7512 §2.3 <c>pin-source</c>) or
/// <c>env:NAME</c>. The value is read when needed and never kept in a string that could be logged.
/// </summary>
public static class PinSource
{
    /// <summary>Reads the secret as UTF-8 bytes (trailing newline removed). The caller wipes the buffer.</summary>
    public static byte[] Read(string? pinSource, string custodian)
    {
        if (string.IsNullOrEmpty(pinSource))
        {
            throw new ShareStoreException(ShareStoreError.PinUnavailable,
                $"No pin-source for custodian '{custodian}': add pin-source=file:PATH or pin-source=env:NAME to its URI");
        }

        string text;
        if (pinSource.StartsWith("file:", StringComparison.Ordinal))
        {
            var path = pinSource["file:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
            {
                path = new Uri(pinSource).LocalPath;
            }

            if (!File.Exists(path))
            {
                throw new ShareStoreException(ShareStoreError.PinUnavailable,
                    $"PIN file for custodian '{custodian}' not found: {path}");
            }

            text = File.ReadAllText(path);
        }
        else if (pinSource.StartsWith("env:", StringComparison.Ordinal))
        {
            var name = pinSource["env:".Length..];
            text = Environment.GetEnvironmentVariable(name) ?? throw new ShareStoreException(ShareStoreError.PinUnavailable,
                $"Environment variable {name} (PIN of custodian '{custodian}') is not set");
        }
        else
        {
            throw new ShareStoreException(ShareStoreError.BadUri,
                $"pin-source of custodian '{custodian}' must start with file: or env:");
        }

        return Encoding.UTF8.GetBytes(text.TrimEnd('\r', '\n'));
    }
}
