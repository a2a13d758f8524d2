using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Outbox;

/// <summary>What every partition entity of one postgresql consumer shares on a node.</summary>
internal sealed class OutboxConsumerRuntime(string consumer, PostgresConsumerOptions options, OutboxStore store, OutboxBatchProcessor processor, TimeSpan drainTimeout)
{
    public string Consumer { get; } = consumer;
    public PostgresConsumerOptions Options { get; } = options;
    public OutboxStore Store { get; } = store;
    public OutboxBatchProcessor Processor { get; } = processor;
    /// <summary>How long a stopping entity lets its in-flight batch finish before abandoning it (rollback).</summary>
    public TimeSpan DrainTimeout { get; } = drainTimeout;
}
