using System.Globalization;
using Akka.Cluster.Sharding;

namespace Centrifugo.Actors.Partitions;

/// <summary>A message routed by the partition shard region to the entity named by <see cref="EntityId"/>.</summary>
internal interface IPartitionMessage
{
    string EntityId { get; }
}

/// <summary>Sent by the keeper every few seconds to every known partition: starting the entity is the effect.</summary>
internal sealed record EnsurePartitionRunning(string EntityId) : IPartitionMessage;

/// <summary>New work may be waiting (PostgreSQL NOTIFY): end the idle wait now.</summary>
internal sealed record WakePartition(string EntityId) : IPartitionMessage;

/// <summary>Asks the entity for its <see cref="PartitionStatus"/>.</summary>
internal sealed record GetPartitionStatus(string EntityId) : IPartitionMessage;

/// <summary>
/// Asks the entity to confirm that the operator's pause (<paramref name="Paused"/> true) or resume, already written to
/// the cluster-wide set, is in force: answered with <see cref="PauseConfirmation"/> once its batch in flight has
/// finished and nothing new starts (pause), or once it may start batches again (resume).
/// </summary>
internal sealed record ConfirmPause(string EntityId, bool Paused) : IPartitionMessage;

/// <summary>The answer to <see cref="ConfirmPause"/>: <paramref name="InForce"/> false when the wait was cut short.</summary>
internal sealed record PauseConfirmation(string EntityId, bool Paused, bool InForce, string Node);

/// <summary>
/// Hand-off stop message (instead of PoisonPill): the entity stops reading, lets the in-flight batch finish
/// (or abandons it after the drain budget, rolling back, so the next owner re-reads it), then stops.
/// </summary>
internal sealed record StopPartition
{
    public static readonly StopPartition Instance = new();
}

/// <summary>
/// Entity ids: <c>pg:&lt;consumer&gt;:&lt;partition&gt;</c> and <c>kafka:&lt;consumer&gt;:&lt;topic&gt;:&lt;partition&gt;</c>.
/// Consumer names are [a-zA-Z0-9_] and Kafka topic names cannot contain ':', so the form is unambiguous.
/// </summary>
internal static class PartitionEntityId
{
    public const string OutboxPrefix = "pg";
    public const string KafkaPrefix = "kafka";

    public static string Outbox(string consumer, int partition) => $"{OutboxPrefix}:{consumer}:{partition}";

    public static string Kafka(string consumer, string topic, int partition) => $"{KafkaPrefix}:{consumer}:{topic}:{partition}";

    public static bool TryParseOutbox(string entityId, out string consumer, out int partition)
    {
        consumer = "";
        partition = -1;
        var parts = entityId.Split(':');
        if (parts.Length != 3 || parts[0] != OutboxPrefix || !int.TryParse(parts[2], out partition))
        {
            return false;
        }
        consumer = parts[1];
        return true;
    }

    /// <summary>
    /// The source, the consumer and the partition as <see cref="PartitionStatus.Partition"/> shows it (outbox: the
    /// number; Kafka: topic/partition) of a well-formed id; false for any other string.
    /// </summary>
    public static bool TryParse(string entityId, out PartitionSource source, out string consumer, out string partition)
    {
        if (TryParseOutbox(entityId, out consumer, out var number))
        {
            (source, partition) = (PartitionSource.Postgresql, number.ToString(CultureInfo.InvariantCulture));
            return true;
        }
        if (TryParseKafka(entityId, out consumer, out var topic, out number))
        {
            (source, partition) = (PartitionSource.Kafka, string.Create(CultureInfo.InvariantCulture, $"{topic}/{number}"));
            return true;
        }
        (source, partition) = (PartitionSource.Postgresql, "");
        return false;
    }

    /// <summary>
    /// The id up to its consumer, "pg:&lt;consumer&gt;" or "kafka:&lt;consumer&gt;" (the id itself when it has no
    /// second ':'): the group the shard allocation balances a partition within. It cuts without parsing the rest,
    /// because the allocation asks it for every placed partition on every decision.
    /// </summary>
    public static string ConsumerKey(string entityId)
    {
        var first = entityId.IndexOf(':', StringComparison.Ordinal);
        var second = first < 0 ? -1 : entityId.IndexOf(':', first + 1);
        return second < 0 ? entityId : entityId[..second];
    }

    public static bool TryParseKafka(string entityId, out string consumer, out string topic, out int partition)
    {
        consumer = "";
        topic = "";
        partition = -1;
        var parts = entityId.Split(':');
        if (parts.Length != 4 || parts[0] != KafkaPrefix || !int.TryParse(parts[3], out partition))
        {
            return false;
        }
        consumer = parts[1];
        topic = parts[2];
        return true;
    }
}

/// <summary>
/// Every partition entity is its own shard (shard id = entity id), so the allocation strategy places partitions, not
/// hash buckets of them: with 24 partitions on 3 nodes a bucket-based spread left 6 / 6 / 12 (docs/design.md).
/// </summary>
internal sealed class PartitionMessageExtractor : IMessageExtractor
{
    public static readonly PartitionMessageExtractor Instance = new();

    public string? EntityId(object message) => message switch
    {
        IPartitionMessage m => m.EntityId,
        _ => null,
    };

    public object? EntityMessage(object message) => message;

    public string? ShardId(object message) => EntityId(message);

    /// <summary>Used by Akka for the messages it routes itself (remembered entities' StartEntity).</summary>
    public string ShardId(string entityId, object? messageHint = null) => entityId;
}
