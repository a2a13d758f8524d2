namespace Centrifugo.Actors.Delivery;

/// <summary>One server-API command ready to send: a state-changing method and its request JSON object (UTF-8).</summary>
internal readonly record struct ApiCommand(string Method, ReadOnlyMemory<byte> Request)
{
    /// <summary>
    /// An <c>idempotency_key</c> to add to <see cref="Request"/> when it is written (derive_idempotency_key), without
    /// re-serialising it; null = the request goes as it is. See <see cref="IdempotencyKeys"/>.
    /// </summary>
    public string? DerivedIdempotencyKey { get; init; }
}

/// <summary>The seven state-changing methods Centrifugo's consumers accept. Exact, lower-case.</summary>
internal static class ApiMethods
{
    public const string Publish = "publish";
    public const string Broadcast = "broadcast";
    public const string Subscribe = "subscribe";
    public const string Unsubscribe = "unsubscribe";
    public const string Disconnect = "disconnect";
    public const string HistoryRemove = "history_remove";
    public const string Refresh = "refresh";

    public static readonly IReadOnlySet<string> Accepted = new HashSet<string>(StringComparer.Ordinal)
    {
        Publish, Broadcast, Subscribe, Unsubscribe, Disconnect, HistoryRemove, Refresh,
    };
}
