namespace ShareVault.Custody.Tests.Threshold;

public sealed class IntegerMathTests
{
    [Fact]
    public void Crt_recombines_residues()
    {
        var result = ShareVault.Custody.Threshold.IntegerMath.Crt([2, 3, 2], [3, 5, 7]);
        Assert.Equal(23, (int)result);
    }
}
