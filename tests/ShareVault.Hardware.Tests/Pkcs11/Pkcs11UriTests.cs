using ShareVault.Hardware.Custodians;
using ShareVault.Hardware.Pkcs11;


namespace ShareVault.Hardware.Tests.Pkcs11;

public sealed class Pkcs11UriTests
{
    [Fact]
    public void Path_and_query_attributes_are_parsed_and_percent_decoded()
    {
        var uri = Pkcs11Uri.Parse("pkcs11:token=custody%20a;object=pool-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin");

        Assert.Equal("custody a", uri.Token);
        Assert.Equal("pool-1", uri.ObjectLabel);
        Assert.Equal("/usr/lib/softhsm/libsofthsm2.so", uri.ModulePath);
        Assert.Equal("file:/run/pin", uri.PinSource);
    }

    [Fact]
    public void With_object_keeps_the_rest_of_the_uri()
    {
        var uri = Pkcs11Uri.Parse("pkcs11:token=custody-a?pin-source=file:/run/pin");

        var withObject = Pkcs11Uri.Parse(uri.WithObject("pool 2"));

        Assert.Equal("custody-a", withObject.Token);
        Assert.Equal("pool 2", withObject.ObjectLabel);
        Assert.Equal("file:/run/pin", withObject.PinSource);
    }

    [Theory]
    [InlineData("pkcs11:object=pool-1")]
    [InlineData("pkcs11:token=a;token=b")]
    [InlineData("pkcs11:token")]
    [InlineData("tpm:object=x")]
    public void Malformed_uris_are_refused(string text)
    {
        var error = Assert.Throws<ShareStoreException>(() => Pkcs11Uri.Parse(text));
        Assert.Equal(ShareStoreError.BadUri, error.Error);
    }

    [Fact]
    public void Custodian_name_is_the_token_label_and_the_key_name_labels_the_object()
    {
        var address = CustodianAddress.Parse("pkcs11:token=custody-b?pin-source=env:PIN_B", "pool-9");

        Assert.Equal("custody-b", address.Name);
        Assert.Equal("pool-9", address.ObjectLabel);
        Assert.Equal(CustodianKind.Pkcs11, address.Kind);
    }
}
