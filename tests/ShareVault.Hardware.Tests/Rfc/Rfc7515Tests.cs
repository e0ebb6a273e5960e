using System.Numerics;
using System.Text;

namespace ShareVault.Hardware.Tests.Rfc;

/// <summary>
/// RFC 7515 Appendix A.2: the RS256 example JWS, its RSA key (A.2.1, as a JWK) and its signature
/// (A.2.1 "the resulting JWS Signature value"). RSASSA-PKCS1-v1_5 is deterministic, so the
/// published signature is reproduced exactly, not only verified.
/// </summary>
public sealed class Rfc7515Tests
{
    // A.2.1: the RSA key (JWK members, base64url).
    private const string N =
        "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";

    private const string E = "AQAB";

    private const string D =
        "Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ";

    // A.2.1: the JWS Protected Header {"alg":"RS256"} and the JWS Payload, each BASE64URL-encoded
    // (the payload is A.1's claims with CRLF line breaks, kept byte for byte).
    private const string EncodedHeader = "eyJhbGciOiJSUzI1NiJ9";

    private const string EncodedPayload =
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

    private const string Payload = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

    // A.2.1: the JWS Signature, BASE64URL-encoded.
    private const string EncodedSignature =
        "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

    private const string CompactJws = EncodedHeader + "." + EncodedPayload + "." + EncodedSignature;

    private static RsaPublicKey PublicKey => RsaPublicKey.FromJwk(new System.Text.Json.Nodes.JsonObject { ["kty"] = "RSA", ["n"] = N, ["e"] = E });

    [Fact]
    public void The_A2_JWS_parses_and_verifies_under_the_A2_key()
    {
        Assert.True(Jws.TryParse(CompactJws, out var jws));
        Assert.Equal("RS256", jws.Algorithm);
        Assert.Null(jws.Kid);
        Assert.Equal(EncodedHeader + "." + EncodedPayload, jws.SigningInput);
        Assert.Equal(Payload, Encoding.UTF8.GetString(jws.Payload));
        Assert.True(Jws.Verify(jws, PublicKey));
    }

    [Fact]
    public void The_A2_JWS_with_one_payload_byte_changed_does_not_verify()
    {
        var tampered = EncodedHeader + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(Payload.Replace("true", "fals", StringComparison.Ordinal))) + "." + EncodedSignature;
        Assert.True(Jws.TryParse(tampered, out var jws));
        Assert.False(Jws.Verify(jws, PublicKey));
    }

    [Fact]
    public void Signing_input_built_as_ShareVault_builds_it_matches_A2()
    {
        // Jws.SigningInput always adds a kid, so the A.2 header (no kid) is encoded the same way by hand:
        // BASE64URL(UTF8(header)) '.' BASE64URL(payload), RFC 7515 §5.1 steps 2-6.
        var input = Base64Url.Encode("{\"alg\":\"RS256\"}"u8) + "." + Base64Url.Encode(Encoding.UTF8.GetBytes(Payload));
        Assert.Equal(EncodedHeader + "." + EncodedPayload, input);

        var ours = Jws.SigningInput("2010-12-29", Encoding.UTF8.GetBytes(Payload));
        Assert.EndsWith("." + EncodedPayload, ours, StringComparison.Ordinal);
        Assert.True(Jws.TryParse(ours + ".AA", out var parsed));
        Assert.Equal("RS256", parsed.Algorithm);
        Assert.Equal("2010-12-29", parsed.Kid);
    }

    [Fact]
    public void PKCS1_encoding_of_the_A2_signing_input_raised_to_d_is_the_A2_signature()
    {
        // The coordinator's path: EM = EMSA-PKCS1-v1_5(SHA-256, input) (RFC 8017 §9.2), s = EM^d mod n.
        var key = PublicKey;
        var d = BigEndian.ToInteger(Base64Url.Decode(D));
        var em = Pkcs1Encoding.EncodeSha256(Encoding.ASCII.GetBytes(EncodedHeader + "." + EncodedPayload), key.ByteLength);
        var signature = BigEndian.ToBytes(BigInteger.ModPow(BigEndian.ToInteger(em), d, key.Modulus), key.ByteLength);

        Assert.Equal(EncodedSignature, Base64Url.Encode(signature));
        Assert.Equal(CompactJws, Jws.Compact(EncodedHeader + "." + EncodedPayload, signature));
    }
}
