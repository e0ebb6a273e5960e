using System.Runtime.InteropServices;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace ShareVault.Hardware.Pkcs11;

/// <summary>
/// A PKCS#11 module loaded once per process (C_Initialize may be called once per module per
/// process, PKCS#11 v2.40 §5.4) and shared by every store that uses it.
/// </summary>
internal sealed class Pkcs11Module
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Pkcs11Module> Loaded = new(StringComparer.Ordinal);
    private static readonly string[] LibdlCandidates = ["libdl.so.2", "libdl.so", "libc.so.6"];
    private static bool _resolverSet;

    private Pkcs11Module(string path, Pkcs11InteropFactories factories, IPkcs11Library library)
    {
        Path = path;
        Factories = factories;
        Library = library;
    }

    public string Path { get; }

    public Pkcs11InteropFactories Factories { get; }

    public IPkcs11Library Library { get; }

    public static Pkcs11Module Load(string path)
    {
        var full = System.IO.Path.GetFullPath(path);
        lock (Gate)
        {
            if (Loaded.TryGetValue(full, out var module))
            {
                return module;
            }

            if (!File.Exists(full))
            {
                throw new ShareStoreException(ShareStoreError.ModuleNotFound, $"PKCS#11 module not found: {full}");
            }

            MapLibdl();
            var factories = new Pkcs11InteropFactories();
            IPkcs11Library library;
            try
            {
                library = factories.Pkcs11LibraryFactory.LoadPkcs11Library(factories, full, AppType.MultiThreaded);
            }
            catch (Pkcs11Exception e)
            {
                throw new ShareStoreException(ShareStoreError.DeviceError, $"PKCS#11 module {full} failed to initialise", e.RV.ToString(), e);
            }
            catch (Exception e) when (e is UnmanagedException or DllNotFoundException or EntryPointNotFoundException)
            {
                throw new ShareStoreException(ShareStoreError.ModuleNotFound, $"{full} could not be loaded as a PKCS#11 module: {e.Message}", inner: e);
            }

            module = new Pkcs11Module(full, factories, library);
            Loaded.Add(full, module);
            return module;
        }
    }

    /// <summary>
    /// Pkcs11Interop 5.3 P/Invokes "libdl", which Debian 12 ships only as libdl.so.2 (without
    /// libc6-dev); map the name so the module loads on a plain runtime image.
    /// </summary>
    private static void MapLibdl()
    {
        if (_resolverSet)
        {
            return;
        }

        NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, static (name, assembly, searchPath) =>
        {
            if (name == "libdl")
            {
                foreach (var candidate in LibdlCandidates)
                {
                    if (NativeLibrary.TryLoad(candidate, out var handle))
                    {
                        return handle;
                    }
                }
            }

            return IntPtr.Zero;
        });
        _resolverSet = true;
    }

    /// <summary>Finds a token by label (labels are stable; slot ids are not, PKCS#11 v2.40 §3.3).</summary>
    public ISlot FindToken(string label)
    {
        List<ISlot> slots;
        try
        {
            slots = Library.GetSlotList(SlotsType.WithTokenPresent);
        }
        catch (Pkcs11Exception e)
        {
            throw new ShareStoreException(ShareStoreError.DeviceError, $"Listing slots of {Path} failed", e.RV.ToString(), e);
        }

        // C_GetTokenInfo of another token may fail while it is busy elsewhere (SoftHSM 2.6 returns
        // CKR_GENERAL_ERROR while another process rewrites that token's file): that is no reason to
        // fail opening this one, so such slots are skipped, and only named if no slot matches.
        CKR? unreadable = null;
        foreach (var slot in slots)
        {
            string tokenLabel;
            try
            {
                tokenLabel = slot.GetTokenInfo().Label.TrimEnd();
            }
            catch (Pkcs11Exception e)
            {
                unreadable = e.RV;
                continue;
            }

            if (string.Equals(tokenLabel, label, StringComparison.Ordinal))
            {
                return slot;
            }
        }

        if (unreadable is { } code)
        {
            throw new ShareStoreException(ShareStoreError.DeviceError,
                $"No token labelled '{label}' found in {Path}, and the label of at least one of its {slots.Count} token(s) could not be read",
                code.ToString());
        }

        throw new ShareStoreException(ShareStoreError.TokenNotFound,
            $"No token labelled '{label}' in {Path} ({slots.Count} token(s) present)");
    }
}
