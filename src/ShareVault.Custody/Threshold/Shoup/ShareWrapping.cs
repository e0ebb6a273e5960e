using System.Buffers.Binary;
using System.Numerics;
using System.Security.Cryptography;
using ShareVault.Hardware;

namespace ShareVault.Custody.Threshold.Shoup;

/// <summary>
/// The dealer's side of moving a share into a token without it crossing the PKCS#11 API in clear:
/// a fresh AES-256 key-encryption key goes to the token under RSA-OAEP (SHA-1, RFC 8017 §7.1), the
/// share goes under AES key wrap with padding (RFC 5649) as a PKCS#8 DH private key
/// (PKCS #3 dhKeyAgreement, p = N, g, x = sᵢ). Every buffer that held the KEK or the share is wiped.
/// </summary>
internal static class ShareWrapping
{
    // 1.2.840.113549.1.3.1 dhKeyAgreement (PKCS #3), DER.
    private static readonly byte[] DhKeyAgreementOid = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x03, 0x01];

    // RFC 5649 §3: alternative initial value prefix.
    private const uint KwpPrefix = 0xA65959A6;

    /// <summary>Wraps the share x for the token whose transport key is <paramref name="transportKey"/>.</summary>
    public static WrappedShare Wrap(RsaPublicKey transportKey, BigInteger prime, BigInteger generator, BigInteger share)
    {
        ArgumentNullException.ThrowIfNull(transportKey);
        var kek = new byte[32];
        byte[]? pkcs8 = null;
        try
        {
            RandomNumberGenerator.Fill(kek);
            using var rsa = transportKey.ToRsa();
            var wrappedKek = rsa.Encrypt(kek, RSAEncryptionPadding.OaepSHA1);
            pkcs8 = DhPrivateKeyInfo(prime, generator, share);
            return new WrappedShare(wrappedKek, AesKeyWrapPad(kek, pkcs8));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kek);
            if (pkcs8 is not null)
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }
        }
    }

    /// <summary>
    /// PrivateKeyInfo (RFC 5208 §5) for a DH key: SEQUENCE { 0, SEQUENCE { dhKeyAgreement,
    /// DHParameter { p, g } }, OCTET STRING { INTEGER x } }. Written into one array the caller wipes.
    /// </summary>
    public static byte[] DhPrivateKeyInfo(BigInteger prime, BigInteger generator, BigInteger x)
    {
        var p = BigEndian.ToBytes(prime);
        var g = BigEndian.ToBytes(generator);
        var xs = x.IsZero ? new byte[1] : BigEndian.ToBytes(x);
        try
        {
            var xContent = IntegerContent(xs);
            var parameters = Tlv(IntegerContent(p)) + Tlv(IntegerContent(g));
            var algorithm = DhKeyAgreementOid.Length + Tlv(parameters);
            var body = Tlv(1) + Tlv(algorithm) + Tlv(Tlv(xContent));
            var result = new byte[Tlv(body)];
            var w = new DerWriter(result);
            w.Header(0x30, body);
            w.Integer([0]);
            w.Header(0x30, algorithm);
            w.Raw(DhKeyAgreementOid);
            w.Header(0x30, parameters);
            w.Integer(p);
            w.Integer(g);
            w.Header(0x04, Tlv(xContent));
            w.Integer(xs);
            if (w.Position != result.Length)
            {
                throw new InvalidOperationException("DER length mismatch");
            }

            return result;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(xs);
        }
    }

    /// <summary>AES key wrap with padding, RFC 5649 §4.1.</summary>
    public static byte[] AesKeyWrapPad(ReadOnlySpan<byte> kek, ReadOnlySpan<byte> plaintext)
    {
        if (plaintext.IsEmpty)
        {
            throw new ArgumentException("Nothing to wrap", nameof(plaintext));
        }

        var blocks = (plaintext.Length + 7) / 8;
        var output = new byte[8 + (blocks * 8)];
        BinaryPrimitives.WriteUInt32BigEndian(output, KwpPrefix);
        BinaryPrimitives.WriteUInt32BigEndian(output.AsSpan(4), (uint)plaintext.Length);
        plaintext.CopyTo(output.AsSpan(8));
        using var aes = Aes.Create();
        var key = kek.ToArray();
        aes.Key = key;
        CryptographicOperations.ZeroMemory(key);
        Span<byte> block = stackalloc byte[16];
        try
        {
            if (blocks == 1)
            {
                // §4.1: a single padded block is encrypted in one ECB operation with the AIV.
                aes.EncryptEcb(output, output, PaddingMode.None);
                return output;
            }

            // RFC 3394 §2.2.1 wrapping with the AIV as initial value.
            for (var j = 0; j < 6; j++)
            {
                for (var i = 1; i <= blocks; i++)
                {
                    output.AsSpan(0, 8).CopyTo(block);
                    output.AsSpan(i * 8, 8).CopyTo(block[8..]);
                    aes.EncryptEcb(block, block, PaddingMode.None);
                    var t = (ulong)((blocks * j) + i);
                    BinaryPrimitives.WriteUInt64BigEndian(output, BinaryPrimitives.ReadUInt64BigEndian(block) ^ t);
                    block[8..].CopyTo(output.AsSpan(i * 8, 8));
                }
            }

            return output;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(block);
        }
    }

    private static int IntegerContent(byte[] magnitude) => magnitude.Length + ((magnitude[0] & 0x80) != 0 ? 1 : 0);

    // Tag, length octets (X.690 §8.1.3, definite form) and content.
    private static int Tlv(int contentLength) => 1 + LengthOctets(contentLength) + contentLength;

    private static int LengthOctets(int length) => length switch
    {
        < 0x80 => 1,
        < 0x100 => 2,
        < 0x10000 => 3,
        _ => 4,
    };

    private ref struct DerWriter(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;

        public int Position { get; private set; }

        public void Header(byte tag, int length)
        {
            _buffer[Position++] = tag;
            switch (LengthOctets(length))
            {
                case 1:
                    _buffer[Position++] = (byte)length;
                    break;
                case 2:
                    _buffer[Position++] = 0x81;
                    _buffer[Position++] = (byte)length;
                    break;
                case 3:
                    _buffer[Position++] = 0x82;
                    _buffer[Position++] = (byte)(length >> 8);
                    _buffer[Position++] = (byte)length;
                    break;
                default:
                    _buffer[Position++] = 0x83;
                    _buffer[Position++] = (byte)(length >> 16);
                    _buffer[Position++] = (byte)(length >> 8);
                    _buffer[Position++] = (byte)length;
                    break;
            }
        }

        public void Integer(byte[] magnitude)
        {
            var pad = (magnitude[0] & 0x80) != 0;
            Header(0x02, magnitude.Length + (pad ? 1 : 0));
            if (pad)
            {
                _buffer[Position++] = 0;
            }

            Raw(magnitude);
        }

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_buffer[Position..]);
            Position += bytes.Length;
        }
    }
}
