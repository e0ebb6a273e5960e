using System.Collections.Concurrent;
using System.Formats.Cbor;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Fido2NetLib;
using Fido2NetLib.Objects;
using Microsoft.Extensions.Logging;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Pools;
using ShareVault.Hardware;

namespace ShareVault.Service.Http;

/// <summary>
/// Identities on the HTTP API: challenge-response logins for operators and members (key file,
/// PKCS#11 or passkey), the bearer sessions they open, and joining a pool by invitation with a
/// passkey (WebAuthn registration through the Fido2 library) or a key file. Challenges live 5
/// minutes in memory and are used once; sessions, invitations (7 days) and each passkey's signature
/// counter are kept in the claims database (<see cref="MemberAccess"/>), so a restart loses only the
/// challenges and passkey registrations in flight.
/// </summary>
internal sealed class MemberGate
{
    public const string AuthPrefix = "sharevault-auth/v1";
    private static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan InvitationLifetime = TimeSpan.FromDays(7);

    private readonly ClaimsEngine _engine;
    private readonly IReadOnlyList<AdminKey> _operatorKeys;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, PendingLogin> _challenges = new(StringComparer.Ordinal);
    /// <summary>Invitations in use by this process, by code hash: a passkey registration in flight keeps its options and key here.</summary>
    private readonly ConcurrentDictionary<string, Invitation> _invitations = new(StringComparer.Ordinal);
    private readonly ILogger? _log;
    private long _counterRefusals;
    private readonly Lazy<WebAuthnBinding> _relyingParty;
    private readonly Lazy<Fido2> _fido2;

    /// <param name="relyingParty">Known once the HTTP listener has its address (the dashboard's origin).</param>
    public MemberGate(ClaimsEngine engine, IReadOnlyList<AdminKey> operatorKeys, Func<WebAuthnBinding> relyingParty, TimeProvider time, ILogger? log = null)
    {
        _engine = engine;
        _operatorKeys = operatorKeys;
        _time = time;
        _log = log;
        Sessions = new SessionBook(engine.Access, time);
        _relyingParty = new Lazy<WebAuthnBinding>(relyingParty);
        _fido2 = new Lazy<Fido2>(() => new Fido2(new Fido2Configuration
        {
            RPID = RelyingParty.RpId,
            RPName = "ShareVault",
            Origins = new HashSet<string>(StringComparer.Ordinal) { RelyingParty.Origin },
        }));
    }

    public SessionBook Sessions { get; }

    /// <summary>Passkey assertions refused because their signature counter did not increase (possible cloned authenticators), since start.</summary>
    public long CounterRefusals => Interlocked.Read(ref _counterRefusals);

    /// <summary>The relying party passkeys are made for (the dashboard's origin).</summary>
    public WebAuthnBinding RelyingParty => _relyingParty.Value;

    /// <summary>The text a caller signs to log in (a passkey signs its SHA-256 as the WebAuthn challenge).</summary>
    public static string AuthText(CallerRole role, string pool, string? member, string nonce) =>
        $"{AuthPrefix}\n{(role == CallerRole.Operator ? "operator" : "member")}\n{pool}\n{member ?? string.Empty}\n{nonce}";

    // ------------------------------------------------------------------ logins

    public JsonObject Challenge(CallerRole role, string pool, string? member)
    {
        if (role == CallerRole.Member && member is null)
        {
            throw new Claims.Errors.ClaimsException(Claims.Errors.ClaimsError.InvalidInput, "A member login names the member");
        }

        var nonce = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        var expires = _time.GetUtcNow() + ChallengeLifetime;
        var text = AuthText(role, pool, role == CallerRole.Member ? member : null, nonce);
        _challenges[nonce] = new PendingLogin(role, pool, role == CallerRole.Member ? member : null, text, expires);
        var answer = new JsonObject
        {
            ["challenge"] = nonce,
            ["text"] = text,
            ["hash"] = Base64Url.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(text))),
            ["expiresAt"] = expires.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (role == CallerRole.Member && _engine.MemberKeyOf(pool, member!) is { WebAuthn: { } binding } passkey)
        {
            answer["rpId"] = binding.RpId;
            answer["credentialId"] = passkey.CredentialId;
        }

        return answer;
    }

    /// <summary>Checks the answer to a challenge and opens a session; 401 for anything wrong (the reason names no secret).</summary>
    public async Task<(string Token, DateTimeOffset Expires, Caller Caller)> LoginAsync(string nonce, string? kid, string? signature, JsonObject? webAuthn, CancellationToken cancellationToken)
    {
        if (!_challenges.TryRemove(nonce, out var pending) || pending.Expires < _time.GetUtcNow())
        {
            throw HttpAuthException.Unauthenticated("Unknown, used or expired challenge");
        }

        var text = Encoding.UTF8.GetBytes(pending.Text);
        Caller caller;
        if (pending.Role == CallerRole.Operator)
        {
            var sig = Decode(signature, "signature");
            var configured = _operatorKeys.FirstOrDefault(k => (kid is null || k.Kid == kid) && k.Verify(text, sig));
            if (configured is not null)
            {
                caller = new Caller(CallerRole.Operator, null, null);
            }
            else if (PoolAdminKeys(pending.Pool).Any(k => (kid is null || k.Kid == kid) && k.Verify(text, sig)))
            {
                caller = new Caller(CallerRole.Operator, pending.Pool, null);
            }
            else
            {
                throw HttpAuthException.Unauthenticated("The signature is not by an operator key of the service or an admin key of the pool");
            }
        }
        else
        {
            var key = _engine.MemberKeyOf(pending.Pool, pending.Member!)
                ?? throw HttpAuthException.Unauthenticated($"Member '{pending.Member}' of pool '{pending.Pool}' holds no key to log in with");
            byte[]? authenticatorData = null;
            bool ok;
            if (key.WebAuthn is null)
            {
                ok = key.Verify(text, Decode(signature, "signature"));
            }
            else
            {
                authenticatorData = webAuthn is null ? null : Decode(Text(webAuthn, "authenticatorData"), "authenticatorData");
                ok = webAuthn is not null && WebAuthnAssertion.Verify(key, SHA256.HashData(text), authenticatorData!,
                    Decode(Text(webAuthn, "clientDataJSON"), "clientDataJSON"), Decode(Text(webAuthn, "signature"), "signature")) is null;
            }

            if (!ok)
            {
                throw HttpAuthException.Unauthenticated($"The answer is not signed by member '{pending.Member}''s key");
            }

            if (authenticatorData is not null)
            {
                await RequireCounterIncreaseAsync(pending.Pool, pending.Member!, key, authenticatorData, HttpAuthException.Unauthenticated, cancellationToken).ConfigureAwait(false);
            }

            caller = new Caller(CallerRole.Member, pending.Pool, pending.Member);
        }

        var (token, expires) = await Sessions.OpenAsync(caller, cancellationToken).ConfigureAwait(false);
        return (token, expires, caller);
    }

    /// <summary>
    /// For a passkey-signed action (<paramref name="memberSig"/> with <c>"webauthn"</c>) whose signature
    /// verifies, refuses it (403) when the authenticator's signature counter did not increase. An
    /// action whose signature does not verify is left to the engine, which refuses it with its reason;
    /// so a forged assertion cannot raise the stored counter and lock the member's passkey out.
    /// </summary>
    public async Task CheckActionCounterAsync(string pool, string member, string kind, JsonObject body, JsonObject? memberSig, CancellationToken cancellationToken)
    {
        if (memberSig?["webauthn"] is not JsonObject assertion || _engine.MemberKeyOf(pool, member) is not { WebAuthn: not null } key)
        {
            return;
        }

        var signed = (JsonObject)body.DeepClone();
        signed[MemberSignature.Field] = memberSig.DeepClone();
        if (MemberSignature.Verify(pool, kind, signed, key) != MemberCheck.Valid || Text(assertion, "authenticator_data") is not { } data)
        {
            return;
        }

        await RequireCounterIncreaseAsync(pool, member, key, Base64Url.Decode(data), HttpAuthException.Forbidden, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// W3C WebAuthn Level 2 §7.2 step 21: the authenticator data's signCount (octets 33-36, big-endian,
    /// §6.1) must exceed the stored one when either is non-zero; otherwise two authenticators hold the
    /// credential's private key (a clone). Counted and logged (member and pool only, no assertion data).
    /// </summary>
    private async Task RequireCounterIncreaseAsync(string pool, string member, MemberKey key, byte[] authenticatorData, Func<string, HttpAuthException> refuse, CancellationToken cancellationToken)
    {
        var signCount = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(authenticatorData.AsSpan(33, 4));
        var check = await _engine.Access.AdvanceSignCountAsync(pool, member, key.CredentialId ?? key.Kid, signCount, cancellationToken).ConfigureAwait(false);
        if (check == SignCountCheck.NotIncreased)
        {
            Interlocked.Increment(ref _counterRefusals);
            _log?.LogWarning("Passkey assertion of member {Member} of pool {Pool} refused: its signature counter {SignCount} did not increase (possible cloned authenticator)", member, pool, signCount);
            throw refuse($"The passkey's signature counter did not increase over the last one seen: the assertion may come from a cloned authenticator (WebAuthn §7.2 step 21)");
        }
    }

    // ------------------------------------------------------------------ joining

    public async Task<(string Code, DateTimeOffset Expires)> InviteAsync(string pool, string member, string name, CancellationToken cancellationToken)
    {
        if (!ShareVault.Evidence.Identifier.IsValid(member) || string.IsNullOrWhiteSpace(name))
        {
            throw new Claims.Errors.ClaimsException(Claims.Errors.ClaimsError.InvalidInput, "An invitation names a valid member id and a name");
        }

        var code = Base64Url.Encode(RandomNumberGenerator.GetBytes(18));
        var expires = _time.GetUtcNow() + InvitationLifetime;
        await _engine.Access.AddInvitationAsync(Hash(code), new InvitationRecord(pool, member, name, expires), cancellationToken).ConfigureAwait(false);
        return (code, expires);
    }

    /// <summary>The invitation a code names, for <paramref name="pool"/>; 401 when unknown, used or expired.</summary>
    public Invitation Invitation(string pool, string? code)
    {
        if (code is null || _engine.Access.FindInvitation(Hash(code), _time.GetUtcNow()) is not { } stored || stored.PoolId != pool)
        {
            throw HttpAuthException.Unauthenticated("Joining needs a valid invitation from the pool's operator");
        }

        return _invitations.GetOrAdd(Hash(code), _ => new Invitation(stored.PoolId, stored.MemberId, stored.Name, stored.Expires));
    }

    /// <summary>WebAuthn creation options for the invited member (RP = the dashboard's origin, ES256 only: the ledger verifies P-256).</summary>
    public string PasskeyOptions(string pool, string code)
    {
        var invitation = Invitation(pool, code);
        var options = _fido2.Value.RequestNewCredential(new RequestNewCredentialParams
        {
            User = new Fido2User { Id = Encoding.UTF8.GetBytes($"{pool}/{invitation.Member}"), Name = invitation.Member, DisplayName = invitation.Name },
            ExcludeCredentials = [],
            AuthenticatorSelection = new AuthenticatorSelection { ResidentKey = ResidentKeyRequirement.Preferred, UserVerification = UserVerificationRequirement.Preferred },
            AttestationPreference = AttestationConveyancePreference.None,
            PubKeyCredParams = [PubKeyCredParam.ES256],
        });
        invitation.Options = options;
        return options.ToJson();
    }

    /// <summary>
    /// Verifies the browser's attestation (Fido2: challenge, origin, RP id hash, flags, format) and keeps
    /// the credential's key for the invitation; answers the <c>member_joined</c> action the member then
    /// signs with the new passkey (its SHA-256 is the assertion's challenge).
    /// </summary>
    public async Task<JsonObject> RegisterPasskeyAsync(string pool, string code, JsonElement attestation, CancellationToken cancellationToken)
    {
        var invitation = Invitation(pool, code);
        var options = invitation.Options ?? throw HttpAuthException.Unauthenticated("Ask for the passkey options of this invitation first");
        AuthenticatorAttestationRawResponse raw;
        try
        {
            raw = attestation.Deserialize<AuthenticatorAttestationRawResponse>() ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new Claims.Errors.ClaimsException(Claims.Errors.ClaimsError.InvalidInput, "The attestation is not a WebAuthn attestation response: " + e.Message, e);
        }

        RegisteredPublicKeyCredential credential;
        try
        {
            credential = await _fido2.Value.MakeNewCredentialAsync(new MakeNewCredentialParams
            {
                AttestationResponse = raw,
                OriginalOptions = options,
                IsCredentialIdUniqueToUserCallback = (_, _) => Task.FromResult(true),
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Fido2VerificationException e)
        {
            throw HttpAuthException.Unauthenticated("The passkey registration does not verify: " + e.Message);
        }

        var key = MemberKey.ForPasskey(CoseToSpki(credential.PublicKey), RelyingParty, Base64Url.Encode(credential.Id));
        invitation.Key = key;
        var action = RegistryChange.MemberJoined(invitation.Member, invitation.Name, key);
        return new JsonObject
        {
            ["member"] = invitation.Member,
            ["kid"] = key.Kid,
            ["credentialId"] = key.CredentialId,
            ["rpId"] = RelyingParty.RpId,
            ["kind"] = LedgerEntry.MemberJoined,
            ["action"] = action,
            ["challenge"] = Base64Url.Encode(MemberSignature.ActionHash(pool, LedgerEntry.MemberJoined, action)),
        };
    }

    /// <summary>The member joins with the signed action; the invitation is used up only when the engine accepted it.</summary>
    public async Task<Invitation> JoinAsync(string pool, string code, MemberKey? keyFile, JsonObject? memberSig, CancellationToken cancellationToken)
    {
        var invitation = Invitation(pool, code);
        var key = keyFile ?? invitation.Key ?? throw new Claims.Errors.ClaimsException(Claims.Errors.ClaimsError.InvalidInput, "Give the member's public key (\"key\": PEM) or register a passkey first");
        await _engine.AddMemberAsync(pool, invitation.Member, invitation.Name, key, memberSig, cancellationToken).ConfigureAwait(false);
        await _engine.Access.UseInvitationAsync(Hash(code), cancellationToken).ConfigureAwait(false);
        _invitations.TryRemove(Hash(code), out _);
        if (key.WebAuthn is not null && memberSig?["webauthn"] is JsonObject assertion && Text(assertion, "authenticator_data") is { } data)
        {
            // The join's assertion is the passkey's first: its counter is the one later assertions must exceed.
            await _engine.Access.AdvanceSignCountAsync(pool, invitation.Member, key.CredentialId ?? key.Kid,
                System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(Base64Url.Decode(data).AsSpan(33, 4)), cancellationToken).ConfigureAwait(false);
        }

        return invitation;
    }

    private IEnumerable<AdminKey> PoolAdminKeys(string pool)
    {
        var entries = _engine.LedgerEntries(pool);
        var first = entries.Count > 0 ? entries[0] : null;
        return first?.Body["admin_keys"] is JsonArray keys ? keys.Select(k => AdminKey.FromPem(k!.GetValue<string>())) : [];
    }

    /// <summary>A COSE_Key (RFC 9053 §7.1.1: kty 2 = EC2, crv 1 = P-256, -2 = x, -3 = y) as SubjectPublicKeyInfo DER.</summary>
    internal static byte[] CoseToSpki(byte[] cose)
    {
        var reader = new CborReader(cose, CborConformanceMode.Lax);
        var count = reader.ReadStartMap() ?? throw new FormatException("indefinite COSE_Key");
        long kty = 0, crv = 0;
        byte[]? x = null, y = null;
        for (var i = 0; i < count; i++)
        {
            var label = reader.ReadInt64();
            switch (label)
            {
                case 1: kty = reader.ReadInt64(); break;
                case -1: crv = reader.ReadInt64(); break;
                case -2: x = reader.ReadByteString(); break;
                case -3: y = reader.ReadByteString(); break;
                default: reader.SkipValue(); break;
            }
        }

        if (kty != 2 || crv != 1 || x is not { Length: 32 } || y is not { Length: 32 })
        {
            throw new Claims.Errors.ClaimsException(Claims.Errors.ClaimsError.InvalidInput, "Passkeys must be ES256 on P-256 (COSE kty 2, crv 1)");
        }

        using var ec = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = x, Y = y } });
        return ec.ExportSubjectPublicKeyInfo();
    }

    private static string Hash(string code) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(code)));

    private static string? Text(JsonObject o, string name) => o[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static byte[] Decode(string? text, string field)
    {
        try
        {
            return Base64Url.Decode(text ?? throw HttpAuthException.Unauthenticated($"The answer lacks its {field}"));
        }
        catch (FormatException)
        {
            throw HttpAuthException.Unauthenticated($"The answer's {field} is not base64url");
        }
    }

    private sealed record PendingLogin(CallerRole Role, string Pool, string? Member, string Text, DateTimeOffset Expires);
}

/// <summary>An operator's invitation for one member to join one pool (and, during a passkey registration, the new credential).</summary>
internal sealed class Invitation(string pool, string member, string name, DateTimeOffset expires)
{
    public string Pool { get; } = pool;

    public string Member { get; } = member;

    public string Name { get; } = name;

    public DateTimeOffset Expires { get; } = expires;

    public CredentialCreateOptions? Options { get; set; }

    public MemberKey? Key { get; set; }
}
