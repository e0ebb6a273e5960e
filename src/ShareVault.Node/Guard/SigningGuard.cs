namespace ShareVault.Node.Guard;

/// <summary>
/// The node's decision whether its hardware signs: its own verified replica of each pool's ledger
/// (persisted under <c>DataDir/replica/</c>) and the checks a payout or a checkpoint must pass.
/// </summary>
public sealed class SigningGuard : IDisposable
{
    private readonly GuardOptions _options;

    public SigningGuard(GuardOptions options)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>The replica's head of a pool; (0, 64 zeros) for a pool the node has not seen.</summary>
    public LedgerHead Head(string poolId)
    {
        ArgumentNullException.ThrowIfNull(poolId);
        return _options.DataDir.Length >= 0 ? LedgerHead.Empty : LedgerHead.Empty;
    }

    /// <summary>Applies the request's ledger segment to the replica when it extends the head, then decides.</summary>
    public GuardDecision Check(GuardRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return GuardDecision.Refuse(GuardRefusal.Malformed, "the guard is not built yet", Head(request.KeyName));
    }

    /// <summary>After the partial was produced: the claim counts as signed by this node, and its amount toward the day's total.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The name the node contract fixes: the request was signed.")]
    public void Signed(GuardRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        _ = _options;
    }

    public void Dispose()
    {
    }
}
