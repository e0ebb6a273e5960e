using System.CommandLine;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Errors;
using ShareVault.Claims.Ledger;

namespace ShareVault.Cli;

/// <summary>
/// The member's signature on the local verbs that write a member action (<c>pool join</c>,
/// <c>pool accept</c>, <c>pool vote</c>, <c>device enroll</c>): the same canonical action and ledger
/// entry as the HTTP API (<see cref="MemberSignature"/>), signed with the member's key file or PKCS#11
/// key. Keyless members are the old form: accepted only in a pool where no member holds a key; once
/// one does, an unsigned action is refused, so no member's decision can be written without them.
/// </summary>
internal static class MemberActions
{
    public static readonly Option<string?> Key = new("--key")
    {
        Description = "The member's key that signs this action: a PEM key file or a PKCS#11 URI ('sharevault member key create'); required in a pool whose members hold keys",
    };

    public static readonly Option<FileInfo?> Signature = new("--member-sig")
    {
        Description = "…or the member's signature made beforehand ('sharevault member sign' printed it): needed when a pool administrator's --admin-sig must cover it",
    };

    /// <summary>
    /// The member_sig for <paramref name="body"/>: from <see cref="Signature"/>, else signed now with
    /// <see cref="Key"/> (which must be the key the member recorded), else null when the pool may still
    /// take unsigned actions; refused otherwise.
    /// </summary>
    public static async Task<JsonObject?> SignAsync(ParseResult result, ClaimsEngine engine, string pool, string member, string kind, JsonObject body, CancellationToken cancellationToken)
    {
        if (result.GetValue(Signature) is { } file)
        {
            return JsonNode.Parse(await File.ReadAllTextAsync(file.FullName, cancellationToken).ConfigureAwait(false)) as JsonObject
                ?? throw new FormatException($"{file.Name} is not a member signature (a JSON object: 'sharevault member sign' prints it)");
        }

        if (result.GetValue(Key) is not { } keyReference)
        {
            RefuseUnsigned(engine, pool, member, kind);
            return null;
        }

        using var key = MemberCommands.OpenKey(keyReference);
        var recorded = engine.MemberKeyOf(pool, member);
        var given = MemberKey.FromSubjectPublicKeyInfo(key.Key.ExportSubjectPublicKeyInfo());
        if (recorded is null || recorded.Kid != given.Kid)
        {
            throw new ClaimsException(ClaimsError.Forbidden, recorded is null
                ? $"Member '{member}' of pool '{pool}' recorded no key when joining; their actions cannot carry a signature"
                : $"The key given (kid {given.Kid}) is not the one member '{member}' recorded (kid {recorded.Kid})");
        }

        return MemberSignature.Sign(key.Key, pool, kind, body);
    }

    /// <summary>An unsigned action by <paramref name="member"/>: refused when they hold a key or any member of the pool does.</summary>
    public static void RefuseUnsigned(ClaimsEngine engine, string pool, string member, string kind)
    {
        if (engine.MemberKeyOf(pool, member) is not null)
        {
            throw new ClaimsException(ClaimsError.Forbidden, $"Member '{member}' of pool '{pool}' holds a key: their {kind} must be signed with it (--key FILE or a PKCS#11 URI, or --member-sig)");
        }

        var signing = engine.ListMembers(pool).Count(m => engine.MemberKeyOf(pool, m.Id) is not null);
        if (signing > 0)
        {
            throw new ClaimsException(ClaimsError.Forbidden,
                $"Pool '{pool}' has {signing} member(s) who sign their actions; an unsigned {kind} by '{member}' is refused. Give the member's key (--key FILE or a PKCS#11 URI; 'sharevault member key create')");
        }
    }
}
