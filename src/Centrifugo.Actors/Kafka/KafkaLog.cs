using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The log messages of Kafka/ (reading, group membership, placement, dead letters). Ids are named in
/// <see cref="KafkaEventId"/>; the logger (and so the category) is the caller's. Never log a SASL password or TLS key:
/// only names, topics, partitions, offsets and librdkafka's own (already redacted) messages.
/// </summary>
internal static partial class KafkaLog
{
    [LoggerMessage(EventId = KafkaEventId.HubStarted, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer} started ({Description})")]
    public static partial void HubStarted(ILogger logger, string consumer, string description);

    [LoggerMessage(EventId = KafkaEventId.HubStopped, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer} stopped")]
    public static partial void HubStopped(ILogger logger, string consumer);

    [LoggerMessage(EventId = KafkaEventId.ClientError, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: client error {Code}: {Reason}")]
    public static partial void ClientError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.FatalClientError, Level = LogLevel.Error,
        Message = "Kafka consumer {Consumer}: fatal client error {Code}: {Reason}")]
    public static partial void FatalClientError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.Librdkafka,
        Message = "Kafka consumer {Consumer} librdkafka {Facility}: {Message}")]
    public static partial void Librdkafka(ILogger logger, LogLevel level, string consumer, string facility, string message);

    [LoggerMessage(EventId = KafkaEventId.ConsumeError, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: consume error on {Topic}/{Partition}: {Code} {Reason}")]
    public static partial void ConsumeError(
        ILogger logger, string consumer, string topic, int partition, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.Acquired, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer} acquired {Topic}/{Partition} at offset {Offset} (committed {Committed})")]
    public static partial void Acquired(ILogger logger, string consumer, string topic, int partition, string offset, long committed);

    [LoggerMessage(EventId = KafkaEventId.Released, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer} released {Topic}/{Partition} (committed {Committed})")]
    public static partial void Released(ILogger logger, string consumer, string topic, int partition, long committed);

    [LoggerMessage(EventId = KafkaEventId.CommittedLookupFailed, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: reading committed offsets failed, retrying: {Code} {Reason}")]
    public static partial void CommittedLookupFailed(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.CommitFailed, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: commit failed, retrying: {Code} {Reason}")]
    public static partial void CommitFailed(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.PartitionCommitFailed, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: commit of {Topic}/{Partition} offset {Offset} failed, retrying: {Code} {Reason}")]
    public static partial void PartitionCommitFailed(
        ILogger logger, string consumer, string topic, int partition, long offset, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.FinalCommitAbandoned, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: giving up the final commit of {Topic}/{Partition} " +
            "(marked {Marked}, committed {Committed}); the next owner re-reads from the committed offset")]
    public static partial void FinalCommitAbandoned(
        ILogger logger, string consumer, string topic, int partition, long marked, long committed);

    [LoggerMessage(EventId = KafkaEventId.MetadataFailed, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: metadata of topic {Topic} unavailable: {Code} {Reason}")]
    public static partial void MetadataFailed(ILogger logger, string consumer, string topic, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.Joined, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer}: this node joined consumer group (protocol {Protocol})")]
    public static partial void Joined(ILogger logger, string consumer, string protocol);

    [LoggerMessage(EventId = KafkaEventId.Left, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer}: this node left the consumer group (every partition revoked and committed)")]
    public static partial void Left(ILogger logger, string consumer);

    [LoggerMessage(EventId = KafkaEventId.DeadLetterProducerError, Level = LogLevel.Warning,
        Message = "Kafka dead-letter producer of {Consumer}: client error {Code}: {Reason}")]
    public static partial void DeadLetterProducerError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = KafkaEventId.DeadLettered, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer} dead-lettered {Topic}/{Partition}@{Offset} to {DeadLetterTopic}: {Reason}")]
    public static partial void DeadLettered(
        ILogger logger, string consumer, string topic, int partition, long offset, string deadLetterTopic, string reason);

    [LoggerMessage(EventId = KafkaEventId.DeadLetterProducerReplaced, Level = LogLevel.Error,
        Message = "Kafka consumer {Consumer}: the dead-letter producer hit a fatal error and was replaced by a new one; " +
            "copies it did not write are retried")]
    public static partial void DeadLetterProducerReplaced(ILogger logger, string consumer);

    [LoggerMessage(EventId = KafkaEventId.TemporaryFailure, Level = LogLevel.Warning,
        Message = "Temporary delivery failure, retrying with backoff: consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    public static partial void TemporaryFailure(ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(EventId = KafkaEventId.ConfigurationFault, Level = LogLevel.Error,
        Message = "Partition stalled by a configuration fault (nothing marked, readiness red): " +
            "consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    public static partial void ConfigurationFault(ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(EventId = KafkaEventId.DeadLetterFailed, Level = LogLevel.Warning,
        Message = "Dead-letter copy not acknowledged, retrying with backoff (offset not marked): " +
            "consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    public static partial void DeadLetterFailed(ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(EventId = KafkaEventId.DecodeCrashed, Level = LogLevel.Error,
        Message = "Decoding a record (or deriving its idempotency key) failed unexpectedly; it goes to the dead letters: " +
            "consumer {Consumer}, {Topic}/{Partition}@{Offset}")]
    public static partial void DecodeCrashed(
        ILogger logger, string consumer, string topic, int partition, long offset, Exception exception);

    [LoggerMessage(EventId = KafkaEventId.PassCrashed, Level = LogLevel.Error,
        Message = "Unexpected error in a pass (nothing marked, retrying with backoff): consumer {Consumer}, {Topic}/{Partition}@{Offset}")]
    public static partial void PassCrashed(ILogger logger, string consumer, string topic, int partition, long offset, Exception exception);

    [LoggerMessage(EventId = KafkaEventId.DeadLetterImpossible, Level = LogLevel.Error,
        Message = "Dead-letter copy can never be written (partition stalled, offset not marked, readiness red; " +
            "nothing after it is redelivered): consumer {Consumer}, {Topic}/{Partition}@{Offset}: {Reason}")]
    public static partial void DeadLetterImpossible(
        ILogger logger, string consumer, string topic, int partition, long offset, string reason);

    [LoggerMessage(EventId = KafkaEventId.AttachFailed, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer} could not attach {Topic}/{Partition}, retrying: {Reason}")]
    public static partial void AttachFailed(ILogger logger, string consumer, string topic, int partition, string reason);

    [LoggerMessage(EventId = KafkaEventId.PartitionLost, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: {Topic}/{Partition} was lost by this group member; " +
            "delivery stopped at once, nothing more is committed")]
    public static partial void PartitionLost(ILogger logger, string consumer, string topic, int partition);

    [LoggerMessage(EventId = KafkaEventId.PositionRewound, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: the read position of {Topic}/{Partition} moved back from {Expected} to {Offset} " +
            "(offset reset or log truncation); replaying from there")]
    public static partial void PositionRewound(ILogger logger, string consumer, string topic, int partition, long expected, long offset);

    [LoggerMessage(EventId = KafkaEventId.GroupAssigned, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer}: the group assigned {Count} partition(s) to this node: {Partitions}")]
    public static partial void GroupAssigned(ILogger logger, string consumer, int count, string partitions);

    [LoggerMessage(EventId = KafkaEventId.GroupRevoked, Level = LogLevel.Information,
        Message = "Kafka consumer {Consumer}: the group revokes {Count} partition(s): {Partitions}; " +
            "waiting for {Reading} reader(s) to finish and commit")]
    public static partial void GroupRevoked(ILogger logger, string consumer, int count, string partitions, int reading);

    [LoggerMessage(EventId = KafkaEventId.RevokeTimedOut, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: the readers of {Partitions} did not finish within the revoke budget; " +
            "the group goes on (the next owner re-reads from the committed offset)")]
    public static partial void RevokeTimedOut(ILogger logger, string consumer, string partitions);

    [LoggerMessage(EventId = KafkaEventId.GroupLost, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: the group dropped this member; " +
            "{Count} partition(s) lost, delivery stopped, nothing committed: {Partitions}")]
    public static partial void GroupLost(ILogger logger, string consumer, int count, string partitions);

    [LoggerMessage(EventId = KafkaEventId.Frozen, Level = LogLevel.Warning,
        Message = "Kafka consumer {Consumer}: this process was frozen for {GapMs} ms; " +
            "delivery is suspended for {SuspendMs} ms until the group confirms the membership")]
    public static partial void Frozen(ILogger logger, string consumer, long gapMs, long suspendMs);

    [LoggerMessage(EventId = KafkaEventId.LocateFailed, Level = LogLevel.Warning,
        Message = "Kafka placement: recording the location of {Count} partition(s) failed, retrying: {Reason}")]
    public static partial void LocateFailed(ILogger logger, int count, string reason);

    public static LogLevel FromSyslog(Confluent.Kafka.SyslogLevel level) => level switch
    {
        <= Confluent.Kafka.SyslogLevel.Error => LogLevel.Error,
        Confluent.Kafka.SyslogLevel.Warning => LogLevel.Warning,
        Confluent.Kafka.SyslogLevel.Notice => LogLevel.Information,
        _ => LogLevel.Debug,
    };
}
