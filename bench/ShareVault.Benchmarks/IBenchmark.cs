namespace ShareVault.Benchmarks;

/// <summary>A benchmark runnable as <c>dotnet run -c Release --project bench/ShareVault.Benchmarks -- NAME</c>.</summary>
internal interface IBenchmark
{
    string Name { get; }

    string Description { get; }

    Task RunAsync(string[] args);
}
