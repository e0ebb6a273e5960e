using System.Diagnostics;
using System.Numerics;
using ShareVault.Hardware.Custodians;
using ShareVault.Hardware.Pkcs11;
using ShareVault.Hardware.Tpm;
using ShareVault.TestSupport;

namespace ShareVault.Hardware.Tests.Custodians;

/// <summary>
/// A coordinator forgets a custodian's store when a partial times out, while the abandoned call may
/// still be inside the hardware. Forgetting must neither wait for that call nor release the store's
/// handles (sessions, the shared CKM_RSA_X_509 mechanism, the TPM connection, the auth value) under
/// it: the call finishes with a correct partial, and only then is the store released.
/// </summary>
public sealed class ShareStoreRegistryTests(TempDataDir data) : IClassFixture<TempDataDir>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Forgetting_a_tpm_store_while_its_call_is_frozen_inside_the_tpm_returns_at_once_and_the_call_still_computes_its_partial()
    {
        using var swtpm = new Swtpm();
        using var registry = new ShareStoreRegistry(data.Path);
        var address = new CustodianAddress("custody-t", swtpm.Uri("custody-t"), "race-t", CustodianKind.Tpm);
        var store = registry.Get(address);
        var key = store.GenerateRsaKey("race-t", 2048);
        var em = new BigInteger(20260301);
        var input = BigEndian.ToBytes(em, key.ByteLength);
        Assert.Equal(em, key.Apply(BigEndian.ToInteger(store.RsaRawPrivate("race-t", input)))); // connected and warm

        Task<byte[]> inFlight;
        Task forget;
        swtpm.Freeze(); // SIGSTOP: the next command waits in the TCTI for an answer that does not come yet
        try
        {
            inFlight = Task.Factory.StartNew(() => store.RsaRawPrivate("race-t", input), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            await Task.Delay(500); // time to reach the TPM: with swtpm stopped the call cannot have finished
            Assert.False(inFlight.IsCompleted);

            var clock = Stopwatch.StartNew();
            forget = Task.Run(() => registry.Forget(address));
            var returned = await Task.WhenAny(forget, Task.Delay(TimeSpan.FromSeconds(2))) == forget;
            Assert.True(returned, $"Forget waited {clock.Elapsed} for the call frozen inside the TPM");
            Assert.False(inFlight.IsCompleted);
        }
        finally
        {
            swtpm.Thaw();
        }

        // The call that was in flight completes with a right partial: its auth value and connection were kept for it.
        var partial = await inFlight.WaitAsync(Wait);
        Assert.Equal(em, key.Apply(BigEndian.ToInteger(partial)));
        await forget.WaitAsync(Wait);

        // Released after that call: the forgotten store takes no more calls; the registry opens a fresh one that signs.
        var closed = Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate("race-t", input));
        Assert.True(closed.IsTransient);
        Assert.Equal(0, ((TpmShareStore)store).CallsInFlight);
        var fresh = registry.Get(address);
        Assert.NotSame(store, fresh);
        Assert.Equal(em, key.Apply(BigEndian.ToInteger(fresh.RsaRawPrivate("race-t", input))));
    }

    [Fact]
    public async Task Forgetting_a_pkcs11_store_while_a_session_is_lent_to_a_call_keeps_that_session_and_mechanism_until_it_has_signed()
    {
        // SoftHSM cannot be held inside C_Sign, so the call is held at its edge: on a session the store
        // lent it (WithSession), about to call C_Sign with the store's shared mechanism. That is where
        // an abandoned partial is when the coordinator forgets the store; what the dispose did there was real.
        var hsm = SoftHsm.Shared;
        using var registry = new ShareStoreRegistry(data.Path);
        var address = new CustodianAddress("dispose-race", hsm.Uri("dispose-race"), "race-p", CustodianKind.Pkcs11);
        var store = (Pkcs11ShareStore)registry.Get(address);
        var label = $"race-{Guid.NewGuid():N}"[..16];
        var key = store.GenerateRsaKey(label, 2048);
        var em = new BigInteger(20260302);
        var input = BigEndian.ToBytes(em, key.ByteLength);

        using var lent = new ManualResetEventSlim();
        using var go = new ManualResetEventSlim();
        var inFlight = Task.Factory.StartNew(() => store.WithSession(session =>
        {
            lent.Set();
            go.Wait(Wait);
            return store.RawPrivate(session, label, input);
        }), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(lent.Wait(Wait));

        var forget = Task.Run(() => registry.Forget(address));
        Assert.True(await Task.WhenAny(forget, Task.Delay(TimeSpan.FromSeconds(2))) == forget, "Forget waited for the call in flight");
        Assert.Equal(1, store.CallsInFlight);

        go.Set();
        var partial = await inFlight.WaitAsync(Wait); // today's dispose closed this session and freed the mechanism: CKR_SESSION_HANDLE_INVALID
        Assert.Equal(em, key.Apply(BigEndian.ToInteger(partial)));
        Assert.Equal(0, store.CallsInFlight);
        Assert.True(Assert.Throws<ShareStoreException>(() => store.RsaRawPrivate(label, input)).IsTransient);

        var fresh = registry.Get(address);
        Assert.Equal(em, key.Apply(BigEndian.ToInteger(fresh.RsaRawPrivate(label, input))));
        fresh.DeleteKey(label);
    }
}
