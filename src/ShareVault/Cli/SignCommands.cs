using System.CommandLine;
using System.Text;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Nodes;
using ShareVault.Custody.Publication;
using ShareVault.Custody.Signing;
using ShareVault.Custody.Threshold;
using ShareVault.Hardware;
using ShareVault.Hardware.Custodians;

namespace ShareVault.Cli;

/// <summary><c>sharevault sign</c> and <c>sharevault verify</c>.</summary>
internal static class SignCommands
{
    public static Command Sign()
    {
        var name = new Option<string>("--name") { Description = "Key name", Required = true };
        var input = new Option<FileInfo>("--in") { Description = "File to sign", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the signature", Required = true };
        var format = new Option<string>("--format") { Description = "raw (PKCS#1 v1.5 signature bytes) or jws (compact, RS256)", DefaultValueFactory = _ => "raw" };
        format.AcceptOnlyFromAmong("raw", "jws");
        var quorum = new Option<string?>("--quorum") { Description = "Sign with this quorum only (product RSA kid)" };
        var signers = new Option<string?>("--signers") { Description = "Only these custodians sign, comma-separated (both schemes)" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for each custodian's partial", DefaultValueFactory = _ => (int)ThresholdSigner.DefaultPartialTimeout.TotalSeconds };
        var command = new Command("sign", "Sign a file with a threshold key; every partial is computed inside a custodian's hardware")
        {
            name, input, output, format, quorum, signers, timeout,
        };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var dataDir = CliContext.ReadableDataDir(result);
            var record = new KeyCatalog(dataDir).Load(result.GetValue(name)!);
            var message = await File.ReadAllBytesAsync(result.GetValue(input)!.FullName, cancellationToken).ConfigureAwait(false);
            using var stores = CustodianStores.Open(dataDir);
            var chosen = result.GetValue(signers)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var signer = new ThresholdSigner(stores, TimeSpan.FromSeconds(result.GetValue(timeout))) { Signers = chosen?.ToHashSet(StringComparer.Ordinal) };
            var outPath = result.GetValue(output)!.FullName;
            ThresholdSignature signature;
            if (result.GetValue(format) == "jws")
            {
                var (jws, sig) = await signer.SignJwsAsync(record, message, result.GetValue(quorum), cancellationToken).ConfigureAwait(false);
                await File.WriteAllTextAsync(outPath, jws, cancellationToken).ConfigureAwait(false);
                signature = sig;
            }
            else
            {
                signature = await signer.SignRawAsync(record, message, result.GetValue(quorum), cancellationToken).ConfigureAwait(false);
                await File.WriteAllBytesAsync(outPath, signature.Signature, cancellationToken).ConfigureAwait(false);
            }

            foreach (var failure in signature.Failures)
            {
                await Console.Error.WriteLineAsync($"sharevault: custodian {failure}; signed with another quorum").ConfigureAwait(false);
            }

            Console.WriteLine($"signed by {signature.Kid} ({string.Join(", ", signature.Signers)}) -> {outPath}");
            return CliContext.Ok;
        }));
        return command;
    }

    public static Command Verify()
    {
        var name = new Option<string>("--name") { Description = "Key name", Required = true };
        var input = new Option<FileInfo>("--in") { Description = "The signed file", Required = true };
        var sig = new Option<FileInfo>("--sig") { Description = "Raw signature or compact JWS", Required = true };
        var command = new Command("verify", "Verify a raw signature or JWS against the key's public keys (exit 0 only if valid)") { name, input, sig };
        command.SetAction((result, cancellationToken) => CliContext.RunAsync(async () =>
        {
            var record = new KeyCatalog(CliContext.ReadableDataDir(result)).Load(result.GetValue(name)!);
            var keys = KeyPublication.PublicKeys(record);
            var message = await File.ReadAllBytesAsync(result.GetValue(input)!.FullName, cancellationToken).ConfigureAwait(false);
            var signature = await File.ReadAllBytesAsync(result.GetValue(sig)!.FullName, cancellationToken).ConfigureAwait(false);
            var (valid, detail) = Check(keys, message, signature);
            (valid ? Console.Out : Console.Error).WriteLine(valid ? $"valid: {detail}" : $"sharevault: invalid signature: {detail}");
            return valid ? CliContext.Ok : CliContext.Failed;
        }));
        return command;
    }

    internal static (bool Valid, string Detail) Check(IReadOnlyList<(string Kid, RsaPublicKey Key)> keys, byte[] message, byte[] signature)
    {
        if (LooksLikeJws(signature) && Jws.TryParse(Encoding.ASCII.GetString(signature), out var jws))
        {
            if (!jws.Payload.AsSpan().SequenceEqual(message))
            {
                return (false, "the JWS payload is not the given file");
            }

            var match = keys.Where(k => k.Kid == jws.Kid).ToList();
            if (match.Count == 0)
            {
                return (false, $"no verification key with kid '{jws.Kid}'");
            }

            return Jws.Verify(jws, match[0].Key) ? (true, $"JWS RS256 by {jws.Kid}") : (false, $"JWS signature does not verify under {jws.Kid}");
        }

        var kid = KeyPublication.VerifyRaw(keys, message, signature);
        return kid is null ? (false, "no verification key accepts this signature") : (true, $"RSASSA-PKCS1-v1_5 SHA-256 by {kid}");
    }

    private static bool LooksLikeJws(byte[] bytes) => bytes.Length > 0 && bytes.All(b => b is (>= 0x20 and < 0x7F) or (byte)'\n' or (byte)'\r');
}
