using System.Text.Json.Serialization;

namespace ShareVault.Custody.Keys;

/// <summary>The threshold scheme of a key; stored in key records as <c>"product-rsa"</c> or <c>"shoup-rsa"</c>.</summary>
[JsonConverter(typeof(KeySchemeJsonConverter))]
public enum KeyScheme
{
    /// <summary>Product RSA: one composite key per quorum, no dealer.</summary>
    [JsonStringEnumMemberName("product-rsa")]
    ProductRsa,

    /// <summary>Shoup threshold RSA: one public key, dealt shares.</summary>
    [JsonStringEnumMemberName("shoup-rsa")]
    ShoupRsa,
}

/// <summary>The stored (and command-line) text of a <see cref="KeyScheme"/>.</summary>
public static class KeySchemeText
{
    public const string ProductRsa = "product-rsa";
    public const string ShoupRsa = "shoup-rsa";

    public static string ToText(this KeyScheme scheme) => scheme switch
    {
        KeyScheme.ProductRsa => ProductRsa,
        KeyScheme.ShoupRsa => ShoupRsa,
        _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown key scheme"),
    };

    /// <summary>Parses the stored text; false for anything else.</summary>
    public static bool TryParse(string? text, out KeyScheme scheme)
    {
        (var ok, scheme) = text switch
        {
            ProductRsa => (true, KeyScheme.ProductRsa),
            ShoupRsa => (true, KeyScheme.ShoupRsa),
            _ => (false, default),
        };
        return ok;
    }
}

/// <summary>Reads and writes only the stored names; a number or an unknown name is a damaged record.</summary>
internal sealed class KeySchemeJsonConverter() : JsonStringEnumConverter<KeyScheme>(namingPolicy: null, allowIntegerValues: false);
