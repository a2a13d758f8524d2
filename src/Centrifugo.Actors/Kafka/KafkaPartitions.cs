using Akka.Actor;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The partitions of one kafka consumer that this deployment owns: the ones the consumer group assigned to this
/// deployment's group member (<see cref="KafkaGroupMemberActor"/>), asked through its singleton proxy. Partitions
/// another deployment owns are never started here; partitions added to a topic later are assigned by the group
/// (the member refreshes metadata every few seconds). An unreachable member answers nothing (this catalog never
/// delays the keeper for the other consumers). Thread-safe.
/// </summary>
internal sealed class KafkaPartitionCatalog(KafkaConsumerRuntime runtime) : IPartitionCatalog
{
    public static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(2);

    public async Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken)
    {
        if (runtime.Member is not { } member)
        {
            return [];
        }

        try
        {
            var owned = await member.Ask<OwnedKafkaPartitions>(GetOwnedKafkaPartitions.Instance, AskTimeout, cancellationToken);
            return owned.Partitions.Select(p => PartitionEntityId.Kafka(runtime.Consumer, p.Topic, p.Partition)).ToArray();
        }
        catch (AskTimeoutException)
        {
            return [];
        }
    }
}
