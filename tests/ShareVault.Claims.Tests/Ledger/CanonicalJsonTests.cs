using System.Text.Json.Nodes;
using ShareVault.Claims.Ledger;

namespace ShareVault.Claims.Tests.Ledger;

public sealed class CanonicalJsonTests
{
    [Fact]
    public void Keys_are_sorted_and_white_space_removed()
    {
        Assert.Equal("""{"a":[1,"x",true,null],"b":{"c":-2,"d":"e"}}""", CanonicalJson.Canonicalize("""{ "b": {"d":"e", "c": -2}, "a": [1, "x", true, null] }"""));
    }

    [Fact]
    public void Strings_escape_only_what_RFC_8785_requires()
    {
        var text = CanonicalJson.SerializeToString(new JsonObject { ["k"] = "°C \"q\" \\ \n \u0001 €" });
        Assert.Equal("{\"k\":\"°C \\\"q\\\" \\\\ \\n \\u0001 €\"}", text);
    }

    [Fact]
    public void Keys_sort_by_UTF16_code_units()
    {
        // RFC 8785 §3.2.3: "\ud83d\ude00" (😀, U+1F600) sorts before "\ufb33" though its code point is higher.
        var text = CanonicalJson.SerializeToString(new JsonObject { ["\ufb33"] = 4, ["😀"] = 1, ["€"] = 2, ["a"] = 3 });
        Assert.Equal("{\"a\":3,\"€\":2,\"😀\":1,\"\ufb33\":4}", text);
    }

    [Fact]
    public void Floating_point_numbers_are_refused()
    {
        Assert.Throws<ArgumentException>(() => CanonicalJson.SerializeToString(new JsonObject { ["x"] = 1.5 }));
    }
}
