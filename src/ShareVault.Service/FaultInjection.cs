using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ShareVault.Claims;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Payouts;

namespace ShareVault.Service;

/// <summary>
/// Crash-test fault points of <c>sharevault serve</c>, armed only by environment variables
/// (docs/claims-service.md, "Crash testing"). Each kills the process with SIGKILL at the one
/// instant where a crash is hardest to survive, so a test can prove that a restart loses nothing
/// and pays nothing twice. Unset (or empty), nothing changes.
/// </summary>
public sealed class FaultInjection
{
    /// <summary>N ≥ 1: SIGKILL right after the Nth committed ingest batch, before its receipts are published.</summary>
    public const string KillAfterStoreVariable = "SHAREVAULT_FAULT_KILL_AFTER_STORE";

    /// <summary>N ≥ 1: SIGKILL right after the Nth payout instruction is threshold-signed, before its payout row commits.</summary>
    public const string KillAfterPayoutSignedVariable = "SHAREVAULT_FAULT_KILL_AFTER_PAYOUT_SIGNED";

    private readonly TextWriter _log;
    private int _batches;
    private int _payouts;

    private FaultInjection(int? afterStore, int? afterPayoutSigned, TextWriter log)
    {
        KillAfterStore = afterStore;
        KillAfterPayoutSigned = afterPayoutSigned;
        _log = log;
    }

    public int? KillAfterStore { get; }

    public int? KillAfterPayoutSigned { get; }

    /// <summary>
    /// The fault points the environment arms, or null when none is set. Prints one line per armed
    /// point to <paramref name="log"/>, so nobody runs it in production unknowingly.
    /// Throws <see cref="ArgumentException"/> for a value that is not a whole number ≥ 1.
    /// </summary>
    public static FaultInjection? FromEnvironment(TextWriter log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var afterStore = Count(KillAfterStoreVariable);
        var afterPayoutSigned = Count(KillAfterPayoutSignedVariable);
        if (afterStore is null && afterPayoutSigned is null)
        {
            return null;
        }

        if (afterStore is { } n)
        {
            log.WriteLine($"sharevault: fault injection armed: SIGKILL after committed ingest batch {n}, before its receipts ({KillAfterStoreVariable}); never in production");
        }

        if (afterPayoutSigned is { } m)
        {
            log.WriteLine($"sharevault: fault injection armed: SIGKILL after payout signature {m}, before its payout row commits ({KillAfterPayoutSignedVariable}); never in production");
        }

        return new FaultInjection(afterStore, afterPayoutSigned, log);
    }

    /// <summary>For <see cref="EvidenceIngest.AfterStoreBeforeReceipts"/>: counts committed batches and kills at the armed one.</summary>
    public Func<IReadOnlyList<VerifiedRecord>, CancellationToken, Task>? AfterStoreBeforeReceipts() =>
        KillAfterStore is not { } n ? null : (records, _) =>
        {
            if (Interlocked.Increment(ref _batches) == n)
            {
                Kill($"after committed ingest batch {n} ({records.Count} record(s)), before its receipts");
            }

            return Task.CompletedTask;
        };

    /// <summary>Wraps the pool signer so the armed payout signature (not a checkpoint) is followed by a kill.</summary>
    public IPoolSigner Wrap(IPoolSigner signer) => KillAfterPayoutSigned is null ? signer : new KillingSigner(signer, this);

    private static int? Count(string variable)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? n
            : throw new ArgumentException($"{variable} must be a whole number ≥ 1 (the fault point to kill at)");
    }

    private void Kill(string where)
    {
        _log.WriteLine($"sharevault: fault injection: SIGKILL {where}");
        using var self = Process.GetCurrentProcess();
        self.Kill();

        // A signal to oneself is delivered before kill(2) returns; never let this thread go on to publish anything regardless.
        Thread.Sleep(Timeout.Infinite);
    }

    private sealed class KillingSigner(IPoolSigner inner, FaultInjection faults) : IPoolSigner
    {
        public async Task<(string Jws, string Kid)> SignAsync(PoolSigningRequest request, CancellationToken cancellationToken)
        {
            var signed = await inner.SignAsync(request, cancellationToken).ConfigureAwait(false);
            if (IsPayout(request.Payload, out var claim) && Interlocked.Increment(ref faults._payouts) == faults.KillAfterPayoutSigned)
            {
                faults.Kill($"after signing payout {faults.KillAfterPayoutSigned} (claim {claim}), before its payout row commits");
            }

            return signed;
        }

        public JsonObject Jwks(string keyName) => inner.Jwks(keyName);

        public bool Exists(string keyName) => inner.Exists(keyName);

        // Checkpoints are signed by the same key; only a payout instruction carries the payout type.
        private static bool IsPayout(byte[] payload, out string? claim)
        {
            claim = null;
            try
            {
                if (JsonNode.Parse(payload) is JsonObject json && json["type"] is JsonValue type && type.TryGetValue<string>(out var text) && text == PayoutInstruction.Type)
                {
                    claim = json["claim"]?.ToString();
                    return true;
                }
            }
            catch (System.Text.Json.JsonException)
            {
            }

            return false;
        }
    }
}
