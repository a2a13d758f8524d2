using System.Collections.Concurrent;

namespace Centrifugo.Actors.Partitions;

internal enum PartitionState
{
    Starting,
    /// <summary>Kafka: the consumer group assigns the partition to another member; the entity reads nothing here.</summary>
    Standby,
    Idle,
    Delivering,
    /// <summary>A temporary failure (Centrifugo down, error 100, database error): retrying with backoff.</summary>
    Retrying,
    /// <summary>A configuration fault (401/404/405): nothing is deleted, readiness is red until it clears.</summary>
    Stalled,
    Stopping,
    /// <summary>Paused by an operator (<c>partitions pause</c>): starts no new batch until resumed.</summary>
    Paused,
    /// <summary>Only in cluster-wide listings: the entity did not answer in time (node busy, unreachable, or moving).</summary>
    Unreachable,
}

/// <summary>
/// Where a partition's messages come from: an outbox table or a Kafka topic. The admin endpoint writes it as
/// "postgresql" / "kafka" (the consumer types of the configuration).
/// </summary>
internal enum PartitionSource
{
    Postgresql,
    Kafka,
}

/// <summary>A snapshot of one partition entity, as shown by the admin endpoint.</summary>
/// <param name="Lag">Kafka: records in the partition not processed yet (from the cached high watermark); null when unknown or not
/// Kafka.</param>
/// <param name="Position">Kafka: the next offset to process (after the last one marked, else the committed offset); null when unknown or
/// not Kafka (the admin endpoint adds the outbox's from the database).</param>
internal sealed record PartitionStatus(
    string EntityId,
    string Consumer,
    PartitionSource Source,
    string Partition,
    string Node,
    PartitionState State,
    long Delivered,
    long DeadLettered,
    long Errors,
    string? LastError,
    DateTimeOffset? LastErrorAt,
    DateTimeOffset? LastActivityAt,
    long? Lag = null,
    long? Position = null);

/// <summary>Statuses of the partition entities living on this node. Thread-safe.</summary>
internal sealed class PartitionStatusBoard
{
    private readonly ConcurrentDictionary<string, PartitionStatus> _statuses = new(StringComparer.Ordinal);

    public void Update(PartitionStatus status) => _statuses[status.EntityId] = status;

    public void Remove(string entityId) => _statuses.TryRemove(entityId, out _);

    public IReadOnlyList<PartitionStatus> Snapshot() =>
        _statuses.Values.OrderBy(s => s.EntityId, StringComparer.Ordinal).ToArray();

    /// <summary>Partitions stalled by a configuration fault; non-empty means "not ready".</summary>
    public IReadOnlyList<PartitionStatus> Stalled() =>
        _statuses.Values.Where(s => s.State == PartitionState.Stalled).OrderBy(s => s.EntityId, StringComparer.Ordinal).ToArray();
}
