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

    /// <summary>
    /// Centrifugo's <c>idempotent_result_ttl</c> (default 5 min): a publish or broadcast whose non-empty
    /// <c>idempotency_key</c> was already published on a channel within this window is answered with the same result
    /// and not published to that channel again (centrifuge keeps the key per channel).
    /// </summary>
    public TimeSpan IdempotentResultTtl { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>A command the stand-in accepted (replied without any error), in acceptance order.</summary>
internal sealed record ReceivedCommand(long Sequence, string Method, string RequestJson, IReadOnlyList<string> Channels, string? User)
{
    /// <summary>The command's idempotency_key; null when it had none.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>
    /// Channels on which a publish/broadcast reached subscribers; the others dropped it as a repeat of its idempotency
    /// key (<see cref="StandInOptions.IdempotentResultTtl"/>). 0 for the other methods.
    /// </summary>
    public int Published { get; init; }

    /// <summary>A publish/broadcast that reached no subscriber: every channel had seen its idempotency key.</summary>
    public bool Suppressed => Published == 0 && Method is "publish" or "broadcast";
}
