namespace ShareVault.Evidence;

/// <summary>
/// The one rule for every name ShareVault hands around: device, pool, member, policy and key ids,
/// PKCS#11 and TPM object labels. Such a name becomes an MQTT topic level (MQTT 5 §4.7: no '/',
/// '+' or '#'), a file name (no '/', not '.' or '..', no leading '.' that would hide it) and a ledger
/// field, so it is 1–64 ASCII letters, digits, '-', '_' or '.', not starting with '.'.
/// </summary>
public static class Identifier
{
    public const int MaxLength = 64;

    /// <summary>The rule in words, for error messages.</summary>
    public const string Rule = "1–64 letters, digits, '-', '_' or '.', not starting with '.'";

    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength || id[0] == '.')
        {
            return false;
        }

        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="what"/> unless <paramref name="id"/> follows the rule.</summary>
    public static void Validate(string? id, string what, string? parameterName = null)
    {
        if (!IsValid(id))
        {
            throw new ArgumentException($"{what} '{id}' must be {Rule}", parameterName);
        }
    }
}
