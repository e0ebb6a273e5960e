using System.Security.Cryptography;

namespace ShareVault.Evidence.Tests;

/// <summary>The example in docs/evidence-format.md §4, checked byte for byte.</summary>
public sealed class EvidenceTestVectorTests
{
    private const string Cose =
        "d284583ca301260378286170706c69636174696f6e2f766e642e73686172657661756c742e65766964656e63652b63" +
        "626f72044c70692d6b69746368656e2d31a0588ea70101026c70692d6b69746368656e2d310302041b000001a0c450" +
        "6c000558202d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a48810682a4006b74656d7065" +
        "726174757265016343656c02f94d60061b000001a0c4506c00a3006a77617465725f6c65616b02f93c00061b000001" +
        "a0c45066240781a2006367707301666e6f2066697858408493a37d79e3e54baccf93889c8e9ba063f41c1464f08880" +
        "80577a8323913bbbaff7ff887312d1b0a1f0a87f9f195844c4a21092db3d31c519fe79485b068122";

    private const string Payload =
        "a70101026c70692d6b69746368656e2d310302041b000001a0c4506c000558202d711642b726b04401627ca9fbac32" +
        "f5c8530fb1903cc4db02258717921a48810682a4006b74656d7065726174757265016343656c02f94d60061b000001" +
        "a0c4506c00a3006a77617465725f6c65616b02f93c00061b000001a0c45066240781a2006367707301666e6f20666978";

    [Fact]
    public void Documented_example_verifies_and_hashes_as_documented()
    {
        using var key = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint
            {
                X = Convert.FromHexString("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
                Y = Convert.FromHexString("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
            },
        });
        var cose = Convert.FromHexString(Cose);

        var result = EvidenceVerifier.Verify(cose, id => id == "pi-kitchen-1" ? key : null);

        Assert.True(result.IsValid, result.ToString());
        var record = result.Record!;
        Assert.Equal(2, record.Sequence);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000), record.Time);
        Assert.Equal(SHA256.HashData("x"u8), record.PreviousHash.ToArray());
        Assert.Equal(new Reading("temperature", "Cel", 21.5, record.Time), record.Readings[0]);
        Assert.Equal(new Reading("water_leak", null, 1, record.Time.AddMilliseconds(-1500)), record.Readings[1]);
        Assert.Equal(new SensorFault("gps", "no fix"), Assert.Single(record.Faults));
        Assert.Equal("658e796ac375275cdd6a2315d0486248422f7acb0e3a2e5f03606d47716884bb", Convert.ToHexStringLower(result.Hash));

        // Our encoder produces exactly the documented payload bytes for that record.
        Assert.Equal(Payload, Convert.ToHexStringLower(EvidencePayload.Encode(record)));
    }
}
