using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// The log messages of Outbox/ (passes and census, the store's start-up checks, LISTEN/NOTIFY). Ids are named in
/// <see cref="OutboxEventId"/>; the logger (and so the category) is the caller's.
/// </summary>
internal static partial class OutboxLog
{
    [LoggerMessage(EventId = OutboxEventId.DeadLettered, Level = LogLevel.Warning,
        Message = "Outbox row moved to the dead-letter table: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = OutboxEventId.TemporaryFailure, Level = LogLevel.Warning,
        Message = "Temporary delivery failure, retrying with backoff: consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    public static partial void TemporaryFailure(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = OutboxEventId.ConfigurationFault, Level = LogLevel.Error,
        Message = "Partition stalled by a configuration fault (nothing deleted, readiness red): " +
            "consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    public static partial void ConfigurationFault(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = OutboxEventId.DatabaseError, Level = LogLevel.Warning,
        Message = "Database error, retrying with backoff: consumer {Consumer}, partition {Partition}: {Reason}")]
    public static partial void DatabaseError(ILogger logger, string consumer, int partition, string reason);

    [LoggerMessage(EventId = OutboxEventId.DecodeCrashed, Level = LogLevel.Error,
        Message = "Decoding an outbox row (or deriving its idempotency key) failed unexpectedly; it goes to the dead letters: " +
            "consumer {Consumer}, partition {Partition}, id {RowId}")]
    public static partial void DecodeCrashed(ILogger logger, string consumer, int partition, long rowId, Exception exception);

    [LoggerMessage(EventId = OutboxEventId.PassCrashed, Level = LogLevel.Error,
        Message = "Unexpected error in an outbox pass (rolled back, nothing deleted, retrying with backoff): " +
            "consumer {Consumer}, partition {Partition}, ids {FirstId}..{LastId}")]
    public static partial void PassCrashed(
        ILogger logger, string consumer, int partition, long? firstId, long? lastId, Exception exception);

    [LoggerMessage(EventId = OutboxEventId.ContinuationFailed, Level = LogLevel.Warning,
        Message = "Outbox batch of consumer {Consumer}, partition {Partition} committed, " +
            "but re-taking the partition lock for the next batch failed (it is read again): {Reason}")]
    public static partial void ContinuationFailed(ILogger logger, string consumer, int partition, string reason);

    [LoggerMessage(EventId = OutboxEventId.DeadLetterCopyStalled, Level = LogLevel.Error,
        Message = "Partition stalled: its dead letters cannot be written " +
            "(nothing deleted, nothing delivered until fixed, readiness red): consumer {Consumer}, partition {Partition}: {Reason}")]
    public static partial void DeadLetterCopyStalled(ILogger logger, string consumer, int partition, string reason);

    [LoggerMessage(EventId = OutboxEventId.CensusFailed, Level = LogLevel.Warning,
        Message = "Outbox census failed for consumer {Consumer}, retrying: {Reason}")]
    public static partial void CensusFailed(ILogger logger, string consumer, string reason);

    [LoggerMessage(EventId = OutboxEventId.DeadLetterCopyRebuilt, Level = LogLevel.Information,
        Message = "The dead-letter copy fits the tables again (rebuilt from the catalogue); partition delivering: " +
            "consumer {Consumer}, partition {Partition}")]
    public static partial void DeadLetterCopyRebuilt(ILogger logger, string consumer, int partition);

    [LoggerMessage(EventId = OutboxEventId.RetryingInPass, Level = LogLevel.Warning,
        Message = "Temporary delivery failure after progress, retrying at once: " +
            "consumer {Consumer}, partition {Partition}, id {RowId}: {Reason}")]
    public static partial void RetryingInPass(ILogger logger, string consumer, int partition, long rowId, string reason);

    [LoggerMessage(EventId = OutboxEventId.DeadLetterTableCreated, Level = LogLevel.Information,
        Message = "Consumer {Consumer}: created dead-letter table {Table}")]
    public static partial void DeadLetterTableCreated(ILogger logger, string consumer, string table);

    [LoggerMessage(EventId = OutboxEventId.RollbackFailed, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: rollback of an outbox transaction failed; the connection is discarded")]
    public static partial void RollbackFailed(ILogger logger, string consumer, Exception exception);

    [LoggerMessage(EventId = OutboxEventId.DeadLetterColumnAdded, Level = LogLevel.Information,
        Message = "Consumer {Consumer}: added column {Column} of the outbox to dead-letter table {Table} (dead letters keep every column)")]
    public static partial void DeadLetterColumnAdded(ILogger logger, string consumer, string table, string column);

    [LoggerMessage(EventId = OutboxEventId.MissingPartitionIndex, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: outbox table {Table} has no index led by (partition): " +
            "every census and read scans the whole table. Run: {CreateIndex}")]
    public static partial void MissingPartitionIndex(ILogger logger, string consumer, string table, string createIndex);

    [LoggerMessage(EventId = OutboxEventId.IdleInTransactionTimeout, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: the server's idle_in_transaction_session_timeout is {TimeoutMs} ms; " +
            "a partition's transaction stays open while its batch is delivered over HTTP, so each transaction of this consumer raises " +
            "it to {BoundMs} ms when shorter (SET LOCAL). A pooler's own idle-transaction timeout (PgBouncer idle_transaction_timeout) " +
            "cannot be raised this way: keep it above partition_select_limit / api.max_batch_size x api.timeout")]
    public static partial void IdleInTransactionTimeout(ILogger logger, string consumer, long timeoutMs, long boundMs);

    [LoggerMessage(EventId = OutboxEventId.PoolTooLarge, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: its connection pool may grow to {Pool} sessions per node " +
            "(pool_max_conns; Npgsql's default is 100) while the server allows max_connections {MaxConnections}: " +
            "two nodes with a backlog can exhaust it and starve the application writing the outbox. " +
            "Set pool_max_conns in the DSN to at most (max_connections - the application's sessions) / nodes")]
    public static partial void PoolTooLarge(ILogger logger, string consumer, int pool, int maxConnections);

    [LoggerMessage(EventId = OutboxEventId.ReadAheadStale, Level = LogLevel.Warning,
        Message = "Consumer {Consumer} partition {Partition}: rows read ahead from id {ReadAheadId} " +
            "were taken by another owner of the partition meanwhile (head is now {HeadId}); reading again. " +
            "Two deployments on one outbox table, or a stale node?")]
    public static partial void ReadAheadStale(ILogger logger, string consumer, int partition, long readAheadId, long headId);

    [LoggerMessage(EventId = OutboxEventId.CentrifugoLockHeld, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: another session holds Centrifugo's own partition lock " +
            "(centrifugo_partition_lock_<name><partition>) of partition(s) {Partitions}: Centrifugo's built-in consumer " +
            "of the same name reads {Table}, or a node with centrifugo_compatible_lock on. This consumer does not exclude Centrifugo's: " +
            "rows are delivered twice and out of order while both run. Set centrifugo_compatible_lock: true on this consumer until " +
            "Centrifugo's consumer is off (docs/operations.md, \"Migrating from Centrifugo's built-in consumers\")")]
    public static partial void CentrifugoLockHeld(ILogger logger, string consumer, string partitions, string table);

    [LoggerMessage(EventId = OutboxEventId.Listening, Level = LogLevel.Information,
        Message = "Consumer {Consumer}: listening for outbox notifications on channel {Channel}")]
    public static partial void Listening(ILogger logger, string consumer, string channel);

    [LoggerMessage(EventId = OutboxEventId.ListenFailed, Level = LogLevel.Error,
        Message = "Consumer {Consumer}: error listening outbox notifications on channel {Channel}; reconnecting in 1 s")]
    public static partial void ListenFailed(ILogger logger, string consumer, string channel, Exception exception);

    [LoggerMessage(EventId = OutboxEventId.InvalidPayload, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: ignoring notification on channel {Channel}: payload {Payload} is not a partition index")]
    public static partial void InvalidPayload(ILogger logger, string consumer, string channel, string payload);

    [LoggerMessage(EventId = OutboxEventId.PartitionOutOfRange, Level = LogLevel.Warning,
        Message = "Consumer {Consumer}: ignoring notification on channel {Channel}: " +
            "outbox partition {Partition} is out of range [0, {NumPartitions})")]
    public static partial void PartitionOutOfRange(ILogger logger, string consumer, string channel, int partition, int numPartitions);

    [LoggerMessage(EventId = OutboxEventId.CallbackFailed, Level = LogLevel.Error,
        Message = "Consumer {Consumer}: notification callback failed for partition {Partition}")]
    public static partial void CallbackFailed(ILogger logger, string consumer, int partition, Exception exception);

    [LoggerMessage(EventId = OutboxEventId.UnusableDsn, Level = LogLevel.Error,
        Message = "Consumer {Consumer}: cannot listen for outbox notifications: {Reason}")]
    public static partial void UnusableDsn(ILogger logger, string consumer, string reason);
}
