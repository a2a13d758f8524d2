using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

// Event ids 4000-4099 (LogEvents.Bands): Kafka reading, group membership and dead-lettering. Never log a SASL password or TLS key: only names,
// topics, partitions, offsets and librdkafka's own (already redacted) messages.
internal static partial class KafkaLog
{
    [LoggerMessage(4050, LogLevel.Warning,
        "Kafka consumer {Consumer}: the read position of {Topic}/{Partition} moved back from {Expected} to {Offset} (offset reset or log truncation); replaying from there")]
    public static partial void PositionRewound(ILogger logger, string consumer, string topic, int partition, long expected, long offset);

    [LoggerMessage(4000, LogLevel.Information, "Kafka consumer {Consumer} started ({Description})")]
    public static partial void HubStarted(ILogger logger, string consumer, string description);

    [LoggerMessage(4001, LogLevel.Information, "Kafka consumer {Consumer} stopped")]
    public static partial void HubStopped(ILogger logger, string consumer);

    [LoggerMessage(4002, LogLevel.Warning, "Kafka consumer {Consumer}: client error {Code}: {Reason}")]
    public static partial void ClientError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4003, LogLevel.Error, "Kafka consumer {Consumer}: fatal client error {Code}: {Reason}")]
    public static partial void FatalClientError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(EventId = 4004, Message = "Kafka consumer {Consumer} librdkafka {Facility}: {Message}")]
    public static partial void Librdkafka(ILogger logger, LogLevel level, string consumer, string facility, string message);

    [LoggerMessage(4005, LogLevel.Warning, "Kafka consumer {Consumer}: consume error on {Topic}/{Partition}: {Code} {Reason}")]
    public static partial void ConsumeError(ILogger logger, string consumer, string topic, int partition, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4006, LogLevel.Information, "Kafka consumer {Consumer} acquired {Topic}/{Partition} at offset {Offset} (committed {Committed})")]
    public static partial void Acquired(ILogger logger, string consumer, string topic, int partition, string offset, long committed);

    [LoggerMessage(4007, LogLevel.Information, "Kafka consumer {Consumer} released {Topic}/{Partition} (committed {Committed})")]
    public static partial void Released(ILogger logger, string consumer, string topic, int partition, long committed);

    [LoggerMessage(4008, LogLevel.Warning, "Kafka consumer {Consumer}: reading committed offsets failed, retrying: {Code} {Reason}")]
    public static partial void CommittedLookupFailed(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4009, LogLevel.Warning, "Kafka consumer {Consumer}: commit failed, retrying: {Code} {Reason}")]
    public static partial void CommitFailed(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4010, LogLevel.Warning, "Kafka consumer {Consumer}: commit of {Topic}/{Partition} offset {Offset} failed, retrying: {Code} {Reason}")]
    public static partial void PartitionCommitFailed(ILogger logger, string consumer, string topic, int partition, long offset, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4011, LogLevel.Warning, "Kafka consumer {Consumer}: giving up the final commit of {Topic}/{Partition} (marked {Marked}, committed {Committed}); the next owner re-reads from the committed offset")]
    public static partial void FinalCommitAbandoned(ILogger logger, string consumer, string topic, int partition, long marked, long committed);

    [LoggerMessage(4012, LogLevel.Warning, "Kafka consumer {Consumer}: metadata of topic {Topic} unavailable: {Code} {Reason}")]
    public static partial void MetadataFailed(ILogger logger, string consumer, string topic, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4013, LogLevel.Information, "Kafka consumer {Consumer}: this node joined consumer group (protocol {Protocol})")]
    public static partial void Joined(ILogger logger, string consumer, string protocol);

    [LoggerMessage(4014, LogLevel.Information, "Kafka consumer {Consumer}: this node left the consumer group (every partition revoked and committed)")]
    public static partial void Left(ILogger logger, string consumer);

    [LoggerMessage(4051, LogLevel.Information, "Kafka consumer {Consumer}: the group assigned {Count} partition(s) to this node: {Partitions}")]
    public static partial void GroupAssigned(ILogger logger, string consumer, int count, string partitions);

    [LoggerMessage(4052, LogLevel.Information,
        "Kafka consumer {Consumer}: the group revokes {Count} partition(s): {Partitions}; waiting for {Reading} reader(s) to finish and commit")]
    public static partial void GroupRevoked(ILogger logger, string consumer, int count, string partitions, int reading);

    [LoggerMessage(4053, LogLevel.Warning,
        "Kafka consumer {Consumer}: the readers of {Partitions} did not finish within the revoke budget; the group goes on (the next owner re-reads from the committed offset)")]
    public static partial void RevokeTimedOut(ILogger logger, string consumer, string partitions);

    [LoggerMessage(4054, LogLevel.Warning,
        "Kafka consumer {Consumer}: the group dropped this member; {Count} partition(s) lost, delivery stopped, nothing committed: {Partitions}")]
    public static partial void GroupLost(ILogger logger, string consumer, int count, string partitions);

    [LoggerMessage(4055, LogLevel.Warning,
        "Kafka consumer {Consumer}: this process was frozen for {GapMs} ms; delivery is suspended for {SuspendMs} ms until the group confirms the membership")]
    public static partial void Frozen(ILogger logger, string consumer, long gapMs, long suspendMs);

    [LoggerMessage(4020, LogLevel.Warning, "Kafka dead-letter producer of {Consumer}: client error {Code}: {Reason}")]
    public static partial void DeadLetterProducerError(ILogger logger, string consumer, Confluent.Kafka.ErrorCode code, string reason);

    [LoggerMessage(4022, LogLevel.Error, "Kafka consumer {Consumer}: the dead-letter producer hit a fatal error and was replaced by a new one; copies it did not write are retried")]
    public static partial void DeadLetterProducerReplaced(ILogger logger, string consumer);

    [LoggerMessage(4021, LogLevel.Information, "Kafka consumer {Consumer} dead-lettered {Topic}/{Partition}@{Offset} to {DeadLetterTopic}: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string consumer, string topic, int partition, long offset, string deadLetterTopic, string reason);

    public static LogLevel FromSyslog(Confluent.Kafka.SyslogLevel level) => level switch
    {
        <= Confluent.Kafka.SyslogLevel.Error => LogLevel.Error,
        Confluent.Kafka.SyslogLevel.Warning => LogLevel.Warning,
        Confluent.Kafka.SyslogLevel.Notice => LogLevel.Information,
        _ => LogLevel.Debug,
    };
}
