using System.Security.Cryptography;
using ShareVault.Claims.Errors;
using ShareVault.Custody.Keys;
using ShareVault.Custody.Threshold;
using ShareVault.Hardware;

namespace ShareVault.Service;

/// <summary>
/// The one classification of failures at a command boundary (the <c>sharevault</c> CLI, the demo):
/// an expected failure comes from the request or the world the command runs in and ends the command
/// with its one-line reason and a non-zero exit; anything else is a bug, logged with its exception and stack.
/// </summary>
public static class CommandFailures
{
    /// <summary>
    /// Expected: the libraries' boundary exceptions, each with its own code (<see cref="ClaimsException"/>,
    /// <see cref="ShareStoreException"/>, <see cref="KeyCatalogException"/>, <see cref="ThresholdSigningException"/>);
    /// the database, files, permissions, sockets and child processes; input the user gave (arguments,
    /// formats, JSON, unknown names); crypto that refuses a key or signature; and a state a command refuses
    /// to continue from (<see cref="InvalidOperationException"/>, which the libraries and the demo throw with a reason).
    /// </summary>
    public static bool IsExpected(Exception exception) => exception is ClaimsException or ShareStoreException or KeyCatalogException or ThresholdSigningException
        or System.Data.Common.DbException or IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException or System.ComponentModel.Win32Exception
        or ArgumentException or FormatException or KeyNotFoundException or System.Text.Json.JsonException
        or CryptographicException or InvalidOperationException;
}
