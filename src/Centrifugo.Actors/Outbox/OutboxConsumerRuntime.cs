using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Outbox;

/// <summary>What every partition entity of one postgresql consumer shares on a node.</summary>
internal sealed class OutboxConsumerRuntime(
    string consumer, PostgresConsumerOptions options, OutboxStore store, OutboxBatchProcessor processor, TimeSpan drainTimeout)
{
    public string Consumer { get; } = consumer;
    public PostgresConsumerOptions Options { get; } = options;
    public OutboxStore Store { get; } = store;
    public OutboxBatchProcessor Processor { get; } = processor;
    /// <summary>How long a stopping entity lets its in-flight batch finish before abandoning it (rollback).</summary>
    public TimeSpan DrainTimeout { get; } = drainTimeout;
    /// <summary>The wake signals of this consumer's partitions running on this node.</summary>
    public LocalPartitionWakes Wakes { get; } = new();

    /// <summary>
    /// How long an idle partition waits for a wake (census, NOTIFY) before it looks by itself. The census wakes
    /// partitions with rows every partition_poll_interval, so this is only a safety net: max(poll interval, 5 min).
    /// </summary>
    public TimeSpan IdleSafetyPoll =>
        Options.PartitionPollInterval > TimeSpan.FromMinutes(5) ? Options.PartitionPollInterval : TimeSpan.FromMinutes(5);
}
