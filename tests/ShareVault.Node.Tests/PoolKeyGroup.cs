using ShareVault.Claims.TestSupport;

namespace ShareVault.Node.Tests;

/// <summary>The test classes that share one real pool key (xunit finds collection definitions only in the test assembly).</summary>
[CollectionDefinition(Name)]
public sealed class PoolKeyGroup : ICollectionFixture<PoolKeyFixture>
{
    public const string Name = "pool key";
}
