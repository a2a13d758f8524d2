using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The partitions of one kafka consumer's topics, from topic metadata: what the admin endpoint lists and accepts. No
/// keeper runs them; the consumer group assigns them to its members (<see cref="KafkaPlacement"/>).
/// </summary>
internal sealed class KafkaPartitionCatalog(KafkaConsumerRuntime runtime) : IPartitionCatalog
{
    public async Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken) =>
        (await runtime.Hub.PartitionsAsync(cancellationToken)).Select(p => PartitionEntityId.Kafka(runtime.Consumer, p.Topic, p.Partition))
            .ToArray();
}
