namespace Centrifugo.Actors.Testing.StandIn;

/// <summary>Configuration of a <see cref="CentrifugoStandIn"/>.</summary>
internal sealed record StandInOptions
{
    /// <summary>Port on 127.0.0.1; 0 = an ephemeral port, kept across <see cref="CentrifugoStandIn.StopAsync"/>/StartAsync.</summary>
    public int Port { get; init; }

    /// <summary>API key (http_api.key); null = a random key per instance. "" = every request is 401, like Centrifugo.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Handler prefix (http_api.handler_prefix).</summary>
    public string Prefix { get; init; } = "/api";

    /// <summary>
    /// Namespaces that exist (part of the channel before the first ':'). null = every namespace except "unknown".
    /// Channels without a ':' (the default namespace) are always known. Unknown namespace → error 102.
    /// </summary>
    public IReadOnlySet<string>? KnownNamespaces { get; init; }

    /// <summary>
    /// Centrifugo's <c>http_api.error_mode: "transport"</c>: a top-level error of a per-method endpoint is answered
    /// with the HTTP status of spec §7.3 (100 → 500, 102/104 → 404, 107/108 → 400, 112 → 416, 113 → 409, other → 500)
    /// and the bare error object <c>{"code":…,"message":…}</c> as body. /batch never uses it.
    /// </summary>
    public bool TransportErrorMode { get; init; }

    /// <summary>false keeps only counters (benchmarks); <see cref="CentrifugoStandIn.Received"/> stays empty.</summary>
    public bool RecordCommands { get; init; } = true;

    /// <summary>
    /// Called synchronously for every accepted command, at acceptance (benchmarks timestamp deliveries with it).
    /// Runs on a request thread: keep it short and thread-safe. Works also when <see cref="RecordCommands"/> is false.
    /// </summary>
    public Action<ReceivedCommand>? OnAccepted { get; init; }
}

/// <summary>A command the stand-in accepted (replied without any error), in acceptance order.</summary>
internal sealed record ReceivedCommand(long Sequence, string Method, string RequestJson, IReadOnlyList<string> Channels, string? User);
