using System.Text.Json.Nodes;

namespace ShareVault.Custody.Signing;

/// <summary>
/// Why a signature is asked for, for custody nodes that judge every request themselves: the
/// justification (pool, purpose, evidence, device keys; built by ShareVault.Claims and carried
/// opaque) and the pool's ledger entries after a sequence number (<c>LedgerAfter(seq)</c>: entries
/// with seq greater than the node's head). Local custodians ignore it.
/// </summary>
public sealed record SigningContext(JsonObject Justification, Func<long, JsonArray> LedgerAfter);
