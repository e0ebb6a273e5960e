using System.Globalization;
using ShareVault.Evidence;

namespace ShareVault.Hardware.Tpm;

/// <summary>
/// A TPM custodian or device-key address: <c>tpm:object=NAME?tcti=TCTI&amp;pin-source=file:PATH[&amp;timeout=SECONDS]</c>.
/// <c>object</c> names the custodian (or device key) and the folder of its key blobs; <c>tcti</c> is
/// a tpm2-tss TCTI string (<c>swtpm:host=127.0.0.1,port=2321</c>, <c>device:/dev/tpmrm0</c>, the
/// default); <c>pin-source</c> says where the auth value is (never the value itself).
/// </summary>
public sealed record TpmUri(string ObjectName, string Tcti, string? PinSource, TimeSpan CommandTimeout)
{
    public const string DefaultTcti = "device:/dev/tpmrm0";

    public static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromSeconds(10);

    public static TpmUri Parse(string uri)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        if (!uri.StartsWith("tpm:", StringComparison.OrdinalIgnoreCase))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, "A TPM URI starts with 'tpm:'");
        }

        var body = uri["tpm:".Length..];
        var q = body.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? body : body[..q];
        var query = q < 0 ? string.Empty : body[(q + 1)..];
        string? name = null;
        foreach (var part in path.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part.StartsWith("object=", StringComparison.Ordinal))
            {
                name = Uri.UnescapeDataString(part["object=".Length..]);
            }
        }

        if (string.IsNullOrEmpty(name))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, "A TPM URI must name its object (tpm:object=NAME?tcti=…)");
        }

        ValidateName(name, "object");
        var tcti = DefaultTcti;
        string? pinSource = null;
        var timeout = DefaultCommandTimeout;
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? pair : pair[..eq];
            var value = eq < 0 ? string.Empty : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (key)
            {
                case "tcti":
                    tcti = value;
                    break;
                case "pin-source":
                    pinSource = value;
                    break;
                case "timeout":
                    if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds <= 0 || seconds > 3600)
                    {
                        throw new ShareStoreException(ShareStoreError.BadUri, $"TPM URI of '{name}': timeout must be seconds between 0 and 3600");
                    }

                    timeout = TimeSpan.FromSeconds(seconds);
                    break;
                default:
                    throw new ShareStoreException(ShareStoreError.BadUri, $"TPM URI of '{name}': unknown attribute '{key}'");
            }
        }

        if (string.IsNullOrEmpty(tcti))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, $"TPM URI of '{name}': tcti is empty");
        }

        return new TpmUri(name, tcti, pinSource, timeout);
    }

    /// <summary>Object names and key labels become file names: letters, digits, '.', '_', '-' only.</summary>
    internal static void ValidateName(string name, string what)
    {
        if (!Identifier.IsValid(name))
        {
            throw new ShareStoreException(ShareStoreError.BadUri, $"TPM {what} name '{name}' must be {Identifier.Rule}");
        }
    }
}
