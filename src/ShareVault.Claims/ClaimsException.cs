namespace ShareVault.Claims;

/// <summary>What went wrong at the claims boundary; the HTTP API and the CLI decide by this code alone.</summary>
public enum ClaimsError
{
    /// <summary>A pool, member, policy, device, claim or key named in the request does not exist.</summary>
    NotFound,

    /// <summary>The thing to create exists already (same id).</summary>
    AlreadyExists,

    /// <summary>The request is malformed or breaks a rule (bad id, bad amount, bad rule text).</summary>
    InvalidInput,

    /// <summary>The request is well formed but the state forbids it (votes closed, claim not open, balance too low).</summary>
    Conflict,

    /// <summary>The change needs a pool administrator's signature, and it is missing or not by an admin key of the pool.</summary>
    Forbidden,

    /// <summary>The database could not be reached or refused the write; trying again later may work.</summary>
    StorageUnavailable,

    /// <summary>The pool's threshold key could not sign (too few custodians answered); trying again later may work.</summary>
    SigningUnavailable,
}

/// <summary>
/// The one exception the claims library throws for a failed request (the Npgsql model: a code that
/// callers switch on, and <see cref="IsTransient"/>). Its message names ids and reasons, never a
/// secret or a full payload. Misuse of the API (a null argument) still throws the BCL exception.
/// </summary>
public sealed class ClaimsException : Exception
{
    public ClaimsException(ClaimsError error, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Error = error;
    }

    public ClaimsException()
        : this(ClaimsError.InvalidInput, "Invalid claims request")
    {
    }

    public ClaimsException(string message)
        : this(ClaimsError.InvalidInput, message)
    {
    }

    public ClaimsException(string message, Exception innerException)
        : this(ClaimsError.InvalidInput, message, innerException)
    {
    }

    public ClaimsError Error { get; }

    /// <summary>Whether the same request may succeed later (storage or custodians were unreachable).</summary>
    public bool IsTransient => Error is ClaimsError.StorageUnavailable or ClaimsError.SigningUnavailable;
}

/// <summary>Checks of request values that fail with <see cref="ClaimsError.InvalidInput"/>.</summary>
internal static class Require
{
    /// <summary>Pool, member, policy and device ids follow <see cref="ShareVault.Evidence.Identifier"/> (they appear in MQTT topics and URLs).</summary>
    public static void Id(string? id, string what)
    {
        if (!ShareVault.Evidence.Identifier.IsValid(id))
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"{what} '{id}' must be {ShareVault.Evidence.Identifier.Rule}");
        }
    }

    public static void Positive(long value, string what)
    {
        if (value <= 0)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"{what} must be positive (got {value})");
        }
    }

    public static void NotNegative(long value, string what)
    {
        if (value < 0)
        {
            throw new ClaimsException(ClaimsError.InvalidInput, $"{what} must not be negative (got {value})");
        }
    }
}
