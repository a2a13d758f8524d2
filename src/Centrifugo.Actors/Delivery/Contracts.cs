namespace Centrifugo.Actors.Delivery;

/// <summary>Outcome of one command that Centrifugo finished with (accepted, or refused for good).</summary>
/// <param name="Delivered">true: Centrifugo accepted it. false: permanently rejected, goes to the dead letters.</param>
/// <param name="ErrorCode">Centrifugo error code when rejected (e.g. 102, 107); null for HTTP-level rejections (400 Bad Request).</param>
/// <param name="Reason">Human-readable reason for a rejection, e.g. "centrifugo error 102: unknown channel".</param>
internal sealed record CommandOutcome(bool Delivered, int? ErrorCode = null, string? Reason = null)
{
    public static readonly CommandOutcome Accepted = new(true);
    public static CommandOutcome Rejected(int? code, string reason) => new(false, code, reason);
}

internal enum FailureKind
{
    /// <summary>Connection error, timeout, 5xx, error 100, per-channel 100 in a broadcast: retry the same command with backoff.</summary>
    Temporary,
    /// <summary>401, 404 on the path, 405: the node is misconfigured; stall loudly, readiness red, delete nothing.</summary>
    Configuration,
}

/// <summary>Why delivery stopped before the end of the list. Message never contains the API key.</summary>
internal sealed record DeliveryFailure(FailureKind Kind, string Message);

/// <summary>
/// Result of delivering an ordered list of commands. <see cref="Completed"/> holds one outcome for each
/// command of the prefix commands[0..Completed.Count) that Centrifugo finished with (delivered or rejected
/// for good); the commands after that prefix were not completed and must be retried in order.
/// <see cref="Failure"/> is null exactly when every command completed.
/// </summary>
internal sealed record DeliveryResult(IReadOnlyList<CommandOutcome> Completed, DeliveryFailure? Failure);

/// <summary>Sends commands to Centrifugo preserving order. Thread-safe.</summary>
internal interface ICentrifugoClient
{
    /// <summary>
    /// Delivers <paramref name="commands"/> in order (chunks of max_batch_size through POST /batch with
    /// parallel:false, or POST /{method} for a single command) and stops at the first command that did
    /// not complete. Never throws for HTTP/transport problems (they become a <see cref="DeliveryFailure"/>);
    /// throws <see cref="OperationCanceledException"/> only when <paramref name="cancellationToken"/> fires.
    /// <paramref name="mayStart"/>, when given, is asked before each HTTP request; false ends the delivery there with a
    /// temporary failure (the owner's fence: the outbox's transaction fence, <c>OutboxBatch.MaySend</c>, or the Kafka
    /// lease's, <c>KafkaPartitionLease.MayDeliver</c>; a slow or paused owner must not send once another may own the partition).
    /// <paramref name="window"/>, when given, caps the commands per request for the partition and learns from each
    /// request (see <see cref="DeliveryWindow"/>).
    /// </summary>
    Task<DeliveryResult> DeliverAsync(
        IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken, Func<bool>? mayStart = null,
        DeliveryWindow? window = null);
}
