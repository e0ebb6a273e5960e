namespace ShareVault.Hardware;

/// <summary>
/// The calls in flight on an owner of native handles (a store's PKCS#11 sessions and mechanism, its
/// TPM connection), and the release of those handles: <see cref="Close"/> refuses new calls at once
/// and releases the handles when the last call in flight has returned, never under it. This is the
/// reference count a <c>SafeHandle</c> keeps (<c>DangerousAddRef</c>/<c>DangerousRelease</c>; NSec's
/// <c>Key</c> disposes its handle the same way). It exists because a coordinator gives up on a slow
/// partial and forgets the store while the abandoned call is still inside <c>C_Sign</c> or the TCTI:
/// disposing then would close the session, free the mechanism or wipe the auth value under it.
/// </summary>
internal sealed class CallsInFlight(string owner, Action release)
{
    private readonly Lock _gate = new();
    private int _calls;
    private bool _closed;
    private bool _released;

    /// <summary>Calls running now (for tests).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _calls;
            }
        }
    }

    /// <summary>True once <see cref="Close"/> has been called (the handles may still be in use).</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    /// <summary>
    /// Runs one call while the handles are held. After <see cref="Close"/> a call is refused as a
    /// transient <see cref="ShareStoreError.DeviceUnreachable"/>: whoever still holds this closed store
    /// (a coordinator that looked it up before another forgot it) reopens the custodian and goes on.
    /// </summary>
    public T Run<T>(Func<T> call)
    {
        lock (_gate)
        {
            if (_closed)
            {
                throw new ShareStoreException(ShareStoreError.DeviceUnreachable, $"The store of custodian '{owner}' was closed; open it again");
            }

            _calls++;
        }

        try
        {
            return call();
        }
        finally
        {
            bool releaseNow;
            lock (_gate)
            {
                releaseNow = --_calls == 0 && _closed && !_released;
                _released |= releaseNow;
            }

            if (releaseNow)
            {
                release();
            }
        }
    }

    /// <summary>Refuses new calls; releases now when none is in flight, else when the last one returns. Idempotent.</summary>
    public void Close()
    {
        bool releaseNow;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            releaseNow = _calls == 0;
            _released = releaseNow;
        }

        if (releaseNow)
        {
            release();
        }
    }
}
