using System.Net;
using System.Net.Sockets;

namespace Centrifugo.Actors.Testing;

/// <summary>Free TCP ports on 127.0.0.1 for the processes and servers the tests start.</summary>
internal static class LoopbackPort
{
    // Ports are taken from just below the OS's ephemeral range. A port from that range (what binding to port 0 hands
    // out) can be taken as the source port of any outgoing connection — a node's connections to the broker, PostgreSQL,
    // the stand-in and its peers — between the moment a test picks it and the moment a node process binds it, which in
    // a 3-node test is 10 s or more later (seen in CI: the third node's remoting failed to start). Below the range only
    // an explicit bind can take a port, and every pick here is checked by binding it.
    private const int Span = 12_000;
    private static readonly (int First, int End) Range = BelowEphemeral();
    private static int _next = Random.Shared.Next(Span);

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago and is not one the OS hands to outgoing connections.</summary>
    public static int Free()
    {
        var size = Range.End - Range.First;
        for (var attempt = 0; attempt < size; attempt++)
        {
            var port = Range.First + (int)((uint)Interlocked.Increment(ref _next) % (uint)size);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // Taken: try the next one.
            }
        }

        using var any = new TcpListener(IPAddress.Loopback, 0);
        any.Start();
        return ((IPEndPoint)any.LocalEndpoint).Port;
    }

    private static (int First, int End) BelowEphemeral()
    {
        var low = 32_768;
        try
        {
            // "32768	60999" on Linux.
            var text = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
            low = int.Parse(text.Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0],
                System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // Not Linux, or not readable: the IANA ephemeral range starts at 49152; 32768 is below both.
        }
        var end = Math.Max(low, 1024 + Span);
        return (end - Span, end);
    }
}
