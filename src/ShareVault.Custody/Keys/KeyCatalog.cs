using System.Text.Json;
using ShareVault.Evidence;
using ShareVault.Hardware;

namespace ShareVault.Custody.Keys;

/// <summary>A key-catalog problem the user can act on (unknown key, name taken, damaged file).</summary>
public sealed class KeyCatalogException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Key records as JSON files under <c>DATA_DIR/keys/NAME.json</c>, written atomically and fsynced.</summary>
public sealed class KeyCatalog
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public KeyCatalog(string dataDir)
    {
        DataDir = Path.GetFullPath(dataDir);
    }

    public string DataDir { get; }

    private string KeysDir => Path.Combine(DataDir, "keys");

    public bool Exists(string name) => File.Exists(PathOf(name));

    public KeyRecord Load(string name)
    {
        var path = PathOf(name);
        if (!File.Exists(path))
        {
            throw new KeyCatalogException($"No key named '{name}' in {KeysDir}");
        }

        try
        {
            return JsonSerializer.Deserialize<KeyRecord>(File.ReadAllText(path), Json)
                ?? throw new KeyCatalogException($"Key file {path} is empty");
        }
        catch (JsonException e)
        {
            throw new KeyCatalogException($"Key file {path} is damaged: {e.Message}", e);
        }
    }

    public void Save(KeyRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var path = PathOf(record.Name);
        DurableFile.CreateDirectory(KeysDir);
        DurableFile.WriteAtomic(path, JsonSerializer.SerializeToUtf8Bytes(record, Json));
    }

    public IReadOnlyList<string> Names() => Directory.Exists(KeysDir)
        ? [.. Directory.EnumerateFiles(KeysDir, "*.json").Select(Path.GetFileNameWithoutExtension).OfType<string>().Order(StringComparer.Ordinal)]
        : [];

    private string PathOf(string name)
    {
        Identifier.Validate(name, "Key name", nameof(name));
        return Path.Combine(KeysDir, name + ".json");
    }
}
