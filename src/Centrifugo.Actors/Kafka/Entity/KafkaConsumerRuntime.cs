using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Kafka;

/// <summary>What every partition entity of one kafka consumer shares on a node (built by <see cref="KafkaHosting.StartConsumerAsync"/>,
/// disposed with the node).</summary>
internal sealed class KafkaConsumerRuntime(
    string consumer,
    KafkaConsumerOptions options,
    KafkaConsumerHub hub,
    KafkaDeadLetterProducer deadLetters,
    KafkaRecordProcessor processor,
    TimeSpan drainTimeout) : IAsyncDisposable
{
    public string Consumer { get; } = consumer;
    public KafkaConsumerOptions Options { get; } = options;
    public KafkaConsumerHub Hub { get; } = hub;
    public KafkaRecordProcessor Processor { get; } = processor;
    /// <summary>How long a stopping entity lets its in-flight batch finish before abandoning it (nothing more marked).</summary>
    public TimeSpan DrainTimeout { get; } = drainTimeout;

    public async ValueTask DisposeAsync()
    {
        // The group first (revocation: final commits), then the dead-letter producer (flush).
        await Hub.DisposeAsync();
        deadLetters.Dispose();
    }
}
