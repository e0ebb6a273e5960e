using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Routing;
using ShareVault.Claims.TestSupport;
using ShareVault.TestSupport;

namespace ShareVault.Service.Tests.Http;

/// <summary>docs/openapi.json describes exactly the routes the service maps, and the service serves it.</summary>
[Collection(PoolKeyGroup.Name)]
public sealed partial class OpenApiTests(PoolKeyFixture key)
{
    [Fact]
    public async Task The_served_openapi_description_is_the_checked_in_one_and_names_every_route_and_method()
    {
        await using var pool = await MemberPool.StartAsync(key, flood: false);
        using var http = pool.Anonymous();
        var served = await http.GetStringAsync(new Uri("/openapi.json", UriKind.Relative));
        var checkedIn = await File.ReadAllTextAsync(Path.Combine(RepoRoot.Path, "docs", "openapi.json"));
        Assert.Equal(checkedIn, served);

        var paths = JsonNode.Parse(served)!["paths"]!.AsObject();
        var mapped = pool.Host.HttpEndpoints()
            .OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Path: Constraint().Replace(e.RoutePattern.RawText!, "}"), Method: m.ToLowerInvariant())))
            .Select(r => (Path: r.Path.StartsWith('/') ? r.Path : "/" + r.Path, r.Method))
            .ToHashSet();
        Assert.NotEmpty(mapped);
        var undocumented = mapped.Where(r => paths[r.Path]?[r.Method] is null).ToList();
        Assert.True(undocumented.Count == 0, "not in docs/openapi.json: " + string.Join(", ", undocumented));
        var described = paths.SelectMany(p => p.Value!.AsObject().Select(m => (Path: p.Key, Method: m.Key))).ToList();
        var unmapped = described.Where(d => !mapped.Contains(d)).ToList();
        Assert.True(unmapped.Count == 0, "described but not mapped: " + string.Join(", ", unmapped));
    }

    [GeneratedRegex(":[a-z]+}")]
    private static partial Regex Constraint();
}
