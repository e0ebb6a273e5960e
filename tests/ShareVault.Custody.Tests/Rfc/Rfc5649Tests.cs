using System.Security.Cryptography;
using ShareVault.Custody.Threshold.Shoup;

namespace ShareVault.Custody.Tests.Rfc;

/// <summary>
/// RFC 5649 §6 (Padded Key Wrap Examples) against the dealer's software wrap
/// (<see cref="ShareWrapping.AesKeyWrapPad"/>): both examples use the same 192-bit KEK; the
/// 20-octet key takes the RFC 3394 rounds, the 7-octet key the single-block ECB path (§4.1).
/// </summary>
public sealed class Rfc5649Tests
{
    // §6, both examples.
    private const string Kek = "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8";

    public static TheoryData<string, string> Examples => new()
    {
        // §6, wrap 20 octets of key data with a 192-bit KEK.
        { "c37b7e6492584340 bed1220780894115 5068f738", "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a" },

        // §6, wrap 7 octets of key data with a 192-bit KEK.
        { "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f" },
    };

    [Theory]
    [MemberData(nameof(Examples))]
    public void Dealer_wrap_reproduces_the_RFC_5649_example(string key, string wrapped)
    {
        var output = ShareWrapping.AesKeyWrapPad(Hex(Kek), Hex(key));
        Assert.Equal(Hex(wrapped), output);
    }

    [Theory]
    [MemberData(nameof(Examples))]
    public void The_example_unwraps_to_its_key_with_the_platform_KWP(string key, string wrapped)
    {
        // An independent implementation (OpenSSL's via .NET) recovers the key, so the AIV and
        // length indicator (§3) the dealer writes are what a token's C_UnwrapKey checks.
        using var aes = Aes.Create();
        aes.Key = Hex(Kek);
        Assert.Equal(Hex(key), aes.DecryptKeyWrapPadded(Hex(wrapped)));
    }

    private static byte[] Hex(string text) => Convert.FromHexString(text.Replace(" ", string.Empty, StringComparison.Ordinal));
}
