namespace ShareVault.Evidence.Tests;

public sealed class IdentifierTests
{
    [Theory]
    [InlineData("kit-flood")]
    [InlineData("pool_1.v2")]
    [InlineData("a")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123")]
    public void Names_of_letters_digits_dash_underscore_and_dot_are_valid(string id) => Assert.True(Identifier.IsValid(id));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData(".hidden")]
    [InlineData("a/b")]
    [InlineData("a+b")]
    [InlineData("a#")]
    [InlineData("a b")]
    [InlineData("é")]
    [InlineData("01234567890123456789012345678901234567890123456789012345678901234")]
    public void Topic_wildcards_path_separators_hidden_names_and_long_names_are_not(string? id)
    {
        Assert.False(Identifier.IsValid(id));
        var error = Assert.Throws<ArgumentException>(() => Identifier.Validate(id, "Device id", "id"));
        Assert.Contains(Identifier.Rule, error.Message, StringComparison.Ordinal);
    }
}
