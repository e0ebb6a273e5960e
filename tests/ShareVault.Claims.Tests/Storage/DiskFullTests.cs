using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using ShareVault.Claims.Ingest;
using ShareVault.Claims.Storage;
using ShareVault.Claims.Tests.Claims;
using ShareVault.Claims.TestSupport;
using ShareVault.Evidence;
using ShareVault.TestSupport;

namespace ShareVault.Claims.Tests.Storage;

/// <summary>The service's SQLite database on a disk that fills up: a clear error, nothing stored lost, recovery when space returns.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed class DiskFullTests(PoolKeyFixture key)
{
    private const int SqliteFull = 13; // SQLITE_FULL, "database or disk is full" (sqlite.org/rescode.html#full)
    // Recent, whole milliseconds (the wire's precision): the engine refuses records more than 7 days
    // before their arrival (EvidenceTimeLimits), and these arrive now.
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.AddHours(-6).ToUnixTimeMilliseconds());

    [Fact]
    public async Task A_full_disk_fails_the_batch_clearly_keeps_every_stored_record_and_storing_resumes_when_space_returns()
    {
        using var disk = new SmallDisk(768);
        var path = Path.Combine(disk.Path, "claims.db");
        var stored = 0;
        VerifiedRecord[]? refused = null;
        SqliteException? full = null;
        using (var db = ClaimsDatabase.Open(path))
        using (var engine = new ClaimsEngine(db, key.Signer(), TimeProvider.System))
        {
            await ClaimsFlowContract.SetUpPoolAsync(engine, key.KeyName, "water_leak == 1 for 10m", votes: 0);
            for (var batch = 0; batch < 200 && full is null; batch++)
            {
                var records = Batch(batch);
                try
                {
                    Assert.All(await engine.StoreAsync(records, default), o => Assert.Equal(StoreOutcome.Stored, o));
                    stored += records.Length;
                }
                catch (SqliteException e)
                {
                    full = e;
                    refused = records;
                }
            }

            Assert.NotNull(full);
            Assert.Equal(SqliteFull, full.SqliteErrorCode);
            Assert.Contains("full", full.Message, StringComparison.Ordinal);
            Assert.True(stored >= 20, $"only {stored} records fitted before the disk was full");
            Assert.Equal(stored, engine.Evidence("dev-1").Count);

            // Space comes back: the batch that failed is stored whole, in the same process.
            disk.Grow(16 * 1024);
            Assert.All(await engine.StoreAsync(refused!, default), o => Assert.Equal(StoreOutcome.Stored, o));
            stored += refused!.Length;
        }

        using var reopened = ClaimsDatabase.Open(path);
        using var again = new ClaimsEngine(reopened, key.Signer(), TimeProvider.System);
        Assert.Equal(stored, again.Evidence("dev-1").Count);
    }

    /// <summary>Ten dry records of 8 KiB each, the next ten sequence numbers of dev-1.</summary>
    private static VerifiedRecord[] Batch(int batch) =>
        [.. Enumerable.Range(batch * 10, 10).Select(seq =>
        {
            var time = T0.AddMinutes(seq);
            var body = RandomNumberGenerator.GetBytes(8 * 1024);
            return new VerifiedRecord("dev-1", seq, time, SHA256.HashData(body), body, [new Reading("water_leak", null, 0, time)], ChainStart: seq == 0);
        })];
}
