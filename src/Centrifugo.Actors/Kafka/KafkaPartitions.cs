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
internal sealed class KafkaPartitionCatalog(string consumer, Func<IActorRef?> member) : IPartitionCatalog
{
    public static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the catalog keeps asking a member that has had no assignment yet (it just started or moved to this node)
    /// before it answers with nothing; the keeper asks again only on its next tick (5 s). After a kill of the member's
    /// node, partitions whose shards the coordinator had not recorded yet (allocated just before the kill) waited for
    /// that next tick although the new member was assigned a second after the keeper's first ask.
    /// </summary>
    internal static readonly TimeSpan UnassignedWait = TimeSpan.FromSeconds(10);

    internal static readonly TimeSpan UnassignedPoll = TimeSpan.FromMilliseconds(200);

    public async Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (member() is { } m)
        {
            OwnedKafkaPartitions owned;
            try
            {
                owned = await m.Ask<OwnedKafkaPartitions>(GetOwnedKafkaPartitions.Instance, AskTimeout, cancellationToken);
            }
            catch (AskTimeoutException)
            {
                return [];
            }

            if (owned.Assigned || waited.Elapsed >= UnassignedWait)
            {
                return owned.Partitions.Select(p => PartitionEntityId.Kafka(consumer, p.Topic, p.Partition)).ToArray();
            }
            await Task.Delay(UnassignedPoll, cancellationToken);
        }
        return [];
    }
}
