using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ledger;
using ShareVault.Claims.Pools;
using ShareVault.Claims.Storage;
using ShareVault.Claims.TestSupport;
using ShareVault.Hardware;
using ShareVault.Service.Tests.Http;
using ShareVault.TestSupport;

namespace ShareVault.Service.Tests.Members;

/// <summary>
/// The HTTP API's access state lives in the claims database: a member's session and an operator's
/// invitation survive a restart of the real service (SQLite and PostgreSQL), an expired session does
/// not log in, only token hashes are stored; and a passkey whose signature counter does not increase
/// is refused (WebAuthn §7.2 step 21), counted in /metrics.
/// </summary>
[Collection(PoolKeyGroup.Name)]
public sealed class MemberAccessTests(PoolKeyFixture key)
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgresql")]
    public async Task A_session_and_an_invitation_survive_a_restart_and_an_expired_session_does_not_log_in(string engine)
    {
        using var operatorKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var alice = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var dave = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var database = engine == "sqlite" ? key.NewDatabasePath() : PostgresServer.Shared.CreateDatabase("access");
        ServiceOptions Options() => IngestOverMqttTests.Options(key, database) with
        {
            OperatorKeys = [AdminKey.FromSubjectPublicKeyInfo(operatorKey.ExportSubjectPublicKeyInfo())],
        };

        string aliceToken, invitation;
        await using (var first = await ClaimsHost.StartAsync(Options(), key.Signer(), TimeProvider.System, default))
        {
            await first.Engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", key.KeyName, 50_000, default);
            var aliceKey = MemberKey.FromSubjectPublicKeyInfo(alice.ExportSubjectPublicKeyInfo());
            await first.Engine.AddMemberAsync("pool-1", "alice", "Alice", aliceKey,
                MemberSignature.Sign(alice, "pool-1", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("alice", "Alice", aliceKey)), default);
            using var anonymous = new HttpClient { BaseAddress = first.HttpAddress };
            aliceToken = await LoginAsync(anonymous, alice, "member", "alice");
            using var operatorHttp = new HttpClient { BaseAddress = first.HttpAddress };
            operatorHttp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await LoginAsync(operatorHttp, operatorKey, "operator", null));
            invitation = (await MemberPool.PostAsync(operatorHttp, "/pools/pool-1/invitations", new JsonObject { ["member"] = "dave", ["name"] = "Dave" }))["invitation"]!.GetValue<string>();

            // Only hashes are stored: neither the token nor the code is in the database.
            using var reader = first.Engine.Database.OpenReader();
            var stored = string.Join('\n', ReadAll(reader, "SELECT token_hash FROM access_sessions"), ReadAll(reader, "SELECT code_hash FROM access_invitations"));
            Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(aliceToken))), stored, StringComparison.Ordinal);
            Assert.DoesNotContain(aliceToken, stored, StringComparison.Ordinal);
            Assert.DoesNotContain(invitation, stored, StringComparison.Ordinal);
        }

        await using var second = await ClaimsHost.StartAsync(Options(), key.Signer(), TimeProvider.System, default);
        using (var http = new HttpClient { BaseAddress = second.HttpAddress })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", aliceToken);
            var me = await http.GetFromJsonAsync<JsonObject>(new Uri("/me", UriKind.Relative));
            Assert.Equal("alice", me!["member"]!.GetValue<string>());
        }

        // The invitation made before the restart still admits dave, once.
        var daveKey = MemberKey.FromSubjectPublicKeyInfo(dave.ExportSubjectPublicKeyInfo());
        JsonObject Join() => new()
        {
            ["invitation"] = invitation,
            ["key"] = daveKey.ToPem(),
            ["member_sig"] = MemberSignature.Sign(dave, "pool-1", LedgerEntry.MemberJoined, RegistryChange.MemberJoined("dave", "Dave", daveKey)),
        };
        using (var anonymous = new HttpClient { BaseAddress = second.HttpAddress })
        {
            Assert.Equal(HttpStatusCode.Created, (await anonymous.PostAsJsonAsync(new Uri("/pools/pool-1/join", UriKind.Relative), Join())).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsJsonAsync(new Uri("/pools/pool-1/join", UriKind.Relative), Join())).StatusCode);
        }

        // A stored session past its expiry is a 401, as an unknown token is.
        var expired = Base64Url.Encode(RandomNumberGenerator.GetBytes(32));
        await second.Engine.Access.OpenSessionAsync(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(expired))),
            new SessionRecord("member", "pool-1", "alice", DateTimeOffset.UtcNow.AddSeconds(-1)), DateTimeOffset.UtcNow.AddMinutes(-20), default);
        using (var http = new HttpClient { BaseAddress = second.HttpAddress })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", expired);
            var refused = await http.GetAsync(new Uri("/me", UriKind.Relative));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("unknown or expired", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_passkey_assertion_whose_signature_counter_does_not_increase_is_refused_and_counted()
    {
        await using var host = await ClaimsHost.StartAsync(IngestOverMqttTests.Options(key), key.Signer(), TimeProvider.System, default);
        await host.Engine.CreatePoolAsync("pool-1", "Riverside homes", "EUR", key.KeyName, 50_000, default);
        var binding = new WebAuthnBinding("localhost", $"http://localhost:{host.HttpAddress!.Port}");
        using var counting = new Passkey(binding, "Y291bnRpbmc");
        using var synced = new Passkey(binding, "c3luY2Vk");
        foreach (var (member, passkey) in new[] { ("pam", counting), ("sam", synced) })
        {
            var join = RegistryChange.MemberJoined(member, member, passkey.Key);
            await host.Engine.AddMemberAsync("pool-1", member, member, passkey.Key, passkey.Sign(MemberSignature.ActionHash("pool-1", LedgerEntry.MemberJoined, join), 0), default);
        }

        using var http = new HttpClient { BaseAddress = host.HttpAddress };
        Assert.Equal(HttpStatusCode.OK, await PasskeyLoginAsync(http, counting, "pam", 5));
        Assert.Equal(HttpStatusCode.Unauthorized, await PasskeyLoginAsync(http, counting, "pam", 5)); // the same counter again: a clone?
        Assert.Equal(HttpStatusCode.Unauthorized, await PasskeyLoginAsync(http, counting, "pam", 3));
        Assert.Equal(HttpStatusCode.Unauthorized, await PasskeyLoginAsync(http, counting, "pam", 0)); // a counter that was non-zero cannot drop to 0
        Assert.Equal(HttpStatusCode.OK, await PasskeyLoginAsync(http, counting, "pam", 6));

        // An authenticator that keeps no counter (synced passkeys report 0) logs in every time.
        Assert.Equal(HttpStatusCode.OK, await PasskeyLoginAsync(http, synced, "sam", 0));
        Assert.Equal(HttpStatusCode.OK, await PasskeyLoginAsync(http, synced, "sam", 0));

        var metrics = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("sharevault_passkey_counter_refusals_total 3\n", metrics, StringComparison.Ordinal);
    }

    private static async Task<HttpStatusCode> PasskeyLoginAsync(HttpClient http, Passkey passkey, string member, uint signCount)
    {
        var challenge = await MemberPool.PostAsync(http, "/auth/challenge", new JsonObject { ["pool"] = "pool-1", ["member"] = member });
        var assertion = passkey.Sign(Base64Url.Decode(challenge["hash"]!.GetValue<string>()), signCount)["webauthn"]!.AsObject();
        using var response = await http.PostAsJsonAsync(new Uri("/auth/token", UriKind.Relative), new JsonObject
        {
            ["challenge"] = challenge["challenge"]!.GetValue<string>(),
            ["webauthn"] = new JsonObject
            {
                ["authenticatorData"] = assertion["authenticator_data"]!.GetValue<string>(),
                ["clientDataJSON"] = assertion["client_data_json"]!.GetValue<string>(),
                ["signature"] = assertion["signature"]!.GetValue<string>(),
            },
        });
        return response.StatusCode;
    }

    private static async Task<string> LoginAsync(HttpClient http, ECDsa key, string role, string? member)
    {
        var request = new JsonObject { ["pool"] = "pool-1", ["role"] = role };
        if (member is not null)
        {
            request["member"] = member;
        }

        var challenge = await MemberPool.PostAsync(http, "/auth/challenge", request);
        var signature = key.SignData(Encoding.UTF8.GetBytes(challenge["text"]!.GetValue<string>()), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        var token = await MemberPool.PostAsync(http, "/auth/token", new JsonObject { ["challenge"] = challenge["challenge"]!.GetValue<string>(), ["signature"] = Base64Url.Encode(signature) });
        return token["token"]!.GetValue<string>();
    }

    private static string ReadAll(System.Data.Common.DbConnection connection, string sql)
    {
        using var command = ClaimsDatabase.Command(connection, null, sql);
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(reader.GetString(0));
        }

        return string.Join('\n', values);
    }

    /// <summary>
    /// A platform authenticator reduced to what the relying party sees (W3C WebAuthn Level 2 §6.1,
    /// §7.2): authenticator data with the RP id hash, UP|UV flags and a chosen signature counter,
    /// client data of type webauthn.get, an ES256 DER signature.
    /// </summary>
    private sealed class Passkey(WebAuthnBinding binding, string credentialId) : IDisposable
    {
        private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        public MemberKey Key => MemberKey.ForPasskey(_key.ExportSubjectPublicKeyInfo(), binding, credentialId);

        /// <summary>A member_sig of this passkey over <paramref name="challenge"/> reporting <paramref name="signCount"/>.</summary>
        public JsonObject Sign(byte[] challenge, uint signCount)
        {
            var clientData = Encoding.UTF8.GetBytes(new JsonObject { ["type"] = "webauthn.get", ["challenge"] = Base64Url.Encode(challenge), ["origin"] = binding.Origin, ["crossOrigin"] = false }.ToJsonString());
            var authData = new byte[37];
            SHA256.HashData(Encoding.UTF8.GetBytes(binding.RpId)).CopyTo(authData, 0);
            authData[32] = 0x05;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(authData.AsSpan(33), signCount);
            var signature = _key.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
            return MemberSignature.FromAssertion(Key.Kid, authData, clientData, signature);
        }

        public void Dispose() => _key.Dispose();
    }
}
