namespace ShareVault.Claims.Devices;

public sealed record DeviceInfo(string Id, string PoolId, string MemberId, byte[] PublicKey);

public sealed record DeviceRow(string Id, string PoolId, string MemberId, byte[] PublicKey, string EnrolledAt, long EvaluatedSequence, long MaxSequence);

/// <summary>
/// Where a device's evaluation stands, as its device row says: the last evaluated and the highest
/// stored sequence, the row's state version (bumped by every writer) and the last evaluated hash.
/// </summary>
internal sealed record EvaluationCursor(long EvaluatedSequence, long MaxSequence, long Version, byte[]? LastHash);
