using System.Net;
using System.Net.Sockets;

namespace Centrifugo.Actors.Testing;

/// <summary>Free TCP ports on 127.0.0.1 for the processes and servers the tests start.</summary>
internal static class LoopbackPort
{
    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (the OS hands out ephemeral ports round-robin).</summary>
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
