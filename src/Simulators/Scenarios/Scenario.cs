using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Simulators.Scenarios;

/// <summary>Where the kit is: a home, or the origin of a trip.</summary>
public sealed record ScenarioLocation(string Label, double Latitude, double Longitude);

/// <summary>Room conditions; used both as the baseline and as per-channel noise amplitudes.</summary>
public sealed record EnvironmentValues(double? TemperatureCelsius, double? HumidityPercent, double? PressurePascal);

/// <summary>The starting environment plus the noise (uniform ± amplitude) added on every step.</summary>
public sealed record ScenarioEnvironment(double TemperatureCelsius, double HumidityPercent, double PressurePascal, EnvironmentValues? Noise = null);

/// <summary>
/// One timeline entry. <see cref="Kind"/> selects which fields matter:
/// <c>environment</c> (TemperatureCelsius/HumidityPercent/PressurePascal, RampMinutes),
/// <c>leak</c> (Wet, BounceMilliseconds: wet only for that long, a splash), <c>drop</c> (FallMilliseconds, PeakG),
/// <c>move</c> (Latitude/Longitude, RampMinutes), <c>gps-fix</c> (FixQuality).
/// </summary>
public sealed record ScenarioEvent(
    double AtMinutes,
    string Kind,
    string? Note = null,
    double? TemperatureCelsius = null,
    double? HumidityPercent = null,
    double? PressurePascal = null,
    double? RampMinutes = null,
    bool? Wet = null,
    double? BounceMilliseconds = null,
    double? FallMilliseconds = null,
    double? PeakG = null,
    double? Latitude = null,
    double? Longitude = null,
    int? FixQuality = null);

/// <summary>A scenario file (JSON, see docs/sensors-and-simulators.md): a kit, a place, a baseline and a timeline.</summary>
public sealed record Scenario(
    string Name,
    string Description,
    string DeviceKind,
    double DurationMinutes,
    double StepSeconds,
    int Seed,
    ScenarioLocation Location,
    ScenarioEnvironment Environment,
    IReadOnlyList<ScenarioEvent> Timeline)
{
    public const string HomeKit = "home";
    public const string LuggageKit = "luggage";

    private static readonly string[] EventKinds = ["environment", "leak", "drop", "move", "gps-fix"];

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    public TimeSpan Duration => TimeSpan.FromMinutes(DurationMinutes);

    public TimeSpan Step => TimeSpan.FromSeconds(StepSeconds);

    /// <summary>Names of the scenarios built into this assembly.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = typeof(Scenario).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
        .Select(n => n[ResourcePrefix.Length..^".json".Length])
        .Order(StringComparer.Ordinal)
        .ToArray();

    private static string ResourcePrefix => "Simulators.Scenarios.";

    /// <summary>Loads a built-in scenario by name (e.g. <c>home-flood</c>).</summary>
    public static Scenario BuiltIn(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        using var stream = typeof(Scenario).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".json")
            ?? throw new ArgumentException($"No scenario named '{name}'. Available: {string.Join(", ", BuiltInNames)}.", nameof(name));
        return Parse(stream, name);
    }

    /// <summary>Loads a scenario from a JSON file.</summary>
    public static Scenario Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Parse(stream, path);
    }

    /// <summary>Parses and validates scenario JSON; <see cref="InvalidDataException"/> names the source and the problem.</summary>
    public static Scenario Parse(Stream json, string source)
    {
        Scenario? scenario;
        try
        {
            scenario = JsonSerializer.Deserialize<Scenario>(json, Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Scenario {source}: {ex.Message}", ex);
        }

        if (scenario is null)
        {
            throw new InvalidDataException($"Scenario {source} is empty.");
        }

        scenario.Validate(source);
        return scenario;
    }

    private void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
            {
                throw new InvalidDataException($"Scenario {source}: {what}.");
            }
        }

        Require(!string.IsNullOrWhiteSpace(Name), "name is required");
        Require(DeviceKind is HomeKit or LuggageKit, $"deviceKind must be '{HomeKit}' or '{LuggageKit}'");
        Require(DurationMinutes > 0, "durationMinutes must be positive");
        Require(StepSeconds > 0, "stepSeconds must be positive");
        Require(Math.Abs(Location.Latitude) <= 90 && Math.Abs(Location.Longitude) <= 180, "location is not a latitude/longitude");
        for (var i = 0; i < Timeline.Count; i++)
        {
            var e = Timeline[i];
            var at = string.Create(CultureInfo.InvariantCulture, $"timeline[{i}] ({e.Kind} at {e.AtMinutes} min)");
            Require(EventKinds.Contains(e.Kind), $"{at}: kind must be one of {string.Join(", ", EventKinds)}");
            Require(e.AtMinutes >= 0 && e.AtMinutes <= DurationMinutes, $"{at}: atMinutes must be within 0..durationMinutes");
            switch (e.Kind)
            {
                case "environment":
                    Require(e.TemperatureCelsius is not null || e.HumidityPercent is not null || e.PressurePascal is not null, $"{at}: needs a target value");
                    break;
                case "drop":
                    Require(e.PeakG is > 0 and <= 16, $"{at}: peakG must be within (0, 16] (the ADXL345 full scale)");
                    break;
                case "move":
                    Require(e.Latitude is { } lat && Math.Abs(lat) <= 90 && e.Longitude is { } lon && Math.Abs(lon) <= 180, $"{at}: needs latitude and longitude");
                    break;
                case "gps-fix":
                    Require(e.FixQuality is >= 0 and <= 8, $"{at}: fixQuality must be 0..8");
                    break;
                default:
                    break;
            }
        }
    }
}
