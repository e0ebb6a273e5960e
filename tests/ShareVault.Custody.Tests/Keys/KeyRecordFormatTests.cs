using System.Text.Json;
using ShareVault.Custody.Keys;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Custody.Tests.Keys;

/// <summary>Key record files written before scheme and custodian kind became enums still load, and save back byte for byte.</summary>
public sealed class KeyRecordFormatTests
{
    // A key file as earlier builds wrote it (KeyCatalog.Json: web defaults, indented).
    private const string StoredProductRsa = """
        {
          "name": "pool-1",
          "scheme": "product-rsa",
          "threshold": 2,
          "bits": 2048,
          "createdAt": "2026-01-02T03:04:05+00:00",
          "custodians": [
            {
              "name": "alice",
              "uri": "pkcs11:token=alice;object=pool-1",
              "objectLabel": "pool-1",
              "kind": "pkcs11",
              "modulus": "AQ",
              "exponent": "AQAB"
            },
            {
              "name": "bob",
              "uri": "tpm:object=bob?tcti=swtpm",
              "objectLabel": "pool-1",
              "kind": "tpm",
              "modulus": "AQ",
              "exponent": "AQAB"
            }
          ],
          "quorums": [],
          "shoup": null
        }
        """;

    [Fact]
    public void A_stored_record_loads_with_enum_kinds_and_serializes_to_the_same_text()
    {
        var record = JsonSerializer.Deserialize<KeyRecord>(StoredProductRsa, KeyCatalog.Json)!;
        Assert.Equal(KeyScheme.ProductRsa, record.Scheme);
        Assert.Equal([CustodianKind.Pkcs11, CustodianKind.Tpm], record.Custodians.Select(c => c.Kind));
        Assert.Equal(StoredProductRsa.ReplaceLineEndings("\n"), JsonSerializer.Serialize(record, KeyCatalog.Json).ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("\"scheme\": \"product-rsa\"", "\"scheme\": \"rsa\"")]
    [InlineData("\"scheme\": \"product-rsa\"", "\"scheme\": 0")]
    [InlineData("\"kind\": \"tpm\"", "\"kind\": \"Tpm\"")]
    public void An_unknown_or_numeric_kind_is_refused(string stored, string damaged)
    {
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<KeyRecord>(StoredProductRsa.Replace(stored, damaged, StringComparison.Ordinal), KeyCatalog.Json));
    }

    [Theory]
    [InlineData(KeyScheme.ProductRsa, "product-rsa")]
    [InlineData(KeyScheme.ShoupRsa, "shoup-rsa")]
    public void Scheme_text_round_trips(KeyScheme scheme, string text)
    {
        Assert.Equal(text, scheme.ToText());
        Assert.True(KeySchemeText.TryParse(text, out var parsed));
        Assert.Equal(scheme, parsed);
    }
}
