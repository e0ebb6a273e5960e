using ShareVault.Claims.Ledger;

namespace ShareVault.Claims.Tests.Ledger.Rfc;

/// <summary>
/// RFC 8785 (JSON Canonicalization Scheme) examples, restricted to what ShareVault's canonical JSON
/// carries: strings, literals and integers. It refuses every non-integer number on purpose
/// (amounts are integer minor units), so the RFC's floating-point examples are refusal tests.
/// </summary>
public sealed class Rfc8785Tests
{
    // §3.2.2 input: the "string" and "literals" members of the example object.
    private const string StringAndLiterals = """
        {
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }
        """;

    [Fact]
    public void The_section_3_2_2_example_without_its_numbers_canonicalizes_as_published()
    {
        // §3.2.2 / §3.2.3 output, "numbers" member removed: members sorted, escapes reduced to the
        // two-character forms of §3.2.2.2 and lower-case \u00xx for the other controls.
        Assert.Equal(
            "{\"literals\":[null,true,false],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}",
            CanonicalJson.Canonicalize(StringAndLiterals));
    }

    [Fact]
    public void The_section_3_2_4_UTF8_bytes_of_the_string_member_match()
    {
        // §3.2.4 lists the canonical output as UTF-8 octets; these are the octets of the
        // "string" member's value there: € is e2 82 ac, \u000f is 5c 75 30 30 30 66, \n is 5c 6e.
        var bytes = CanonicalJson.Serialize(System.Text.Json.Nodes.JsonNode.Parse("""{"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}"""));
        Assert.Equal(
            Convert.FromHexString("7b22737472696e67223a22e282ac245c75303030665c6e4127425c225c5c5c5c5c222f227d"),
            bytes);
    }

    [Fact]
    public void The_full_section_3_2_2_example_is_refused_for_its_floating_point_numbers()
    {
        const string Example = """
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """;
        Assert.Throws<ArgumentException>(() => CanonicalJson.Canonicalize(Example));
    }

    [Fact]
    public void Members_sort_as_in_section_3_2_3()
    {
        // §3.2.3: sorting by UTF-16 code units puts the emoji (a surrogate pair) before U+FB33.
        const string Input = """
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """;
        const string Expected =
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\","
            + "\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}";
        Assert.Equal(Expected, CanonicalJson.Canonicalize(Input));
    }

    // Appendix B: IEEE 754 values whose ECMAScript form is an integer ShareVault can carry.
    public static TheoryData<string, string> IntegerNumbers => new()
    {
        { "0", "0" },                                   // 0x0000000000000000
        { "-0", "0" },                                  // 0x8000000000000000 (minus zero)
        { "9007199254740991", "9007199254740991" },     // 0x433fffffffffffff, 2^53 - 1
        { "9007199254740992", "9007199254740992" },     // 0x4340000000000000, 2^53
        { "-9007199254740992", "-9007199254740992" },   // 0xc340000000000000, -2^53
    };

    [Theory]
    [MemberData(nameof(IntegerNumbers))]
    public void Appendix_B_integers_serialize_as_published(string input, string expected)
    {
        Assert.Equal($"[{expected}]", CanonicalJson.Canonicalize($"[{input}]"));
    }

    // Appendix B values ShareVault refuses: fractions, exponents and integers past ±2^53.
    public static TheoryData<string> RefusedNumbers => new()
    {
        "5e-324",                       // 0x0000000000000001
        "1.7976931348623157e+308",      // 0x7fefffffffffffff
        "295147905179352830000",        // 0x4430000000000000, beyond 2^53 (and beyond long)
        "9.999999999999997e+22",        // 0x44b52d02c7e14af5
        "1e+23",                        // 0x44b52d02c7e14af6
        "9007199254740993",             // past 2^53: not exactly representable (§3.2.2.3)
        "4.50",                         // §3.2.2 example element
    };

    [Theory]
    [MemberData(nameof(RefusedNumbers))]
    public void Appendix_B_non_integers_and_large_integers_are_refused(string input)
    {
        Assert.Throws<ArgumentException>(() => CanonicalJson.Canonicalize($"[{input}]"));
    }
}
