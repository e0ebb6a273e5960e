using System.Text.Json.Nodes;

namespace ShareVault.Claims.Lifecycle;

public sealed record ClaimInfo(string Id, string PoolId, string MemberId, string PolicyId, string DeviceId, long StartSequence, string Status, long Amount, string RuleHash, JsonArray Evidence, string OpenedAt, string? DecidedAt, string? Reason);

/// <summary>Where a claim stands. Stored, listed and written to the ledger as its lower-case name (<see cref="ClaimStatusText"/>).</summary>
public enum ClaimStatus
{
    /// <summary>Its trigger fired; it waits for a decision (votes, or the rule itself).</summary>
    Opened,

    /// <summary>Decided for; a payout follows once the pool's balance covers it.</summary>
    Approved,

    /// <summary>Decided against by the members' votes.</summary>
    Declined,

    /// <summary>Its payout instruction is signed and recorded.</summary>
    Paid,
}

/// <summary>Who decided a claim: the <c>by</c> field of a <c>decision</c> ledger entry.</summary>
public enum DecidedBy
{
    /// <summary>The policy approves its trigger without votes (votes_required = 0).</summary>
    Rule,

    /// <summary>Enough members voted one way.</summary>
    Votes,
}

/// <summary>
/// The text of statuses and deciders as the database, the API and the ledger export carry it; the
/// export format (<c>sharevault-ledger-export/1</c>) fixes these strings, so they never change.
/// </summary>
public static class ClaimStatusText
{
    public static string ToText(this ClaimStatus status) => status switch
    {
        ClaimStatus.Opened => "opened",
        ClaimStatus.Approved => "approved",
        ClaimStatus.Declined => "declined",
        ClaimStatus.Paid => "paid",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "not a claim status"),
    };

    public static string ToText(this DecidedBy by) => by switch
    {
        DecidedBy.Rule => "rule",
        DecidedBy.Votes => "votes",
        _ => throw new ArgumentOutOfRangeException(nameof(by), by, "not a decider"),
    };

    /// <summary>Parses stored or requested text; false for anything else.</summary>
    public static bool TryParse(string? text, out ClaimStatus status)
    {
        foreach (var candidate in Enum.GetValues<ClaimStatus>())
        {
            if (string.Equals(candidate.ToText(), text, StringComparison.Ordinal))
            {
                status = candidate;
                return true;
            }
        }

        status = default;
        return false;
    }

    /// <summary>The status a stored row or a verified export carries; anything else is not ours.</summary>
    public static ClaimStatus Parse(string text) =>
        TryParse(text, out var status) ? status : throw new FormatException($"'{text}' is not a claim status");
}
