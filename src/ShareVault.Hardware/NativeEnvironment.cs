using System.Runtime.InteropServices;

namespace ShareVault.Hardware;

/// <summary>
/// Sets an environment variable for native code too. <see cref="Environment.SetEnvironmentVariable(string, string)"/>
/// changes only .NET's copy on Unix, so a native module (SoftHSM reads SOFTHSM2_CONF with getenv) would not see it.
/// </summary>
public static partial class NativeEnvironment
{
    public static void Set(string name, string value)
    {
        Environment.SetEnvironmentVariable(name, value);
        if (SetEnv(name, value, 1) != 0)
        {
            throw new InvalidOperationException($"setenv({name}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
