using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// Cluster-wide view of the partitions. A message through the shard region starts the entity it names, so the view
/// first asks every member's region which entities it runs (sharding's state query), then asks only those for their
/// status. Partitions of the catalogs that run nowhere, and entities that do not answer within the timeout, are listed
/// as unreachable; a Kafka partition that runs nowhere is standby (its group assigns it to a member outside this
/// deployment, or to nobody yet).
/// </summary>
internal static class ClusterStatus
{
    public static async Task<IReadOnlyList<PartitionStatus>> PartitionsAsync(
        ActorSystem system, IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        var configured = new List<string>();
        foreach (var catalog in catalogs)
        {
            configured.AddRange(await catalog.EntityIdsAsync(cancellationToken));
        }

        var running = (await RunningAsync(system, timeout, cancellationToken)).ToHashSet(StringComparer.Ordinal);
        var statuses = await Task.WhenAll(configured.Concat(running).Distinct(StringComparer.Ordinal).Select(async id =>
        {
            if (!running.Contains(id))
            {
                return PartitionEntityId.TryParseKafka(id, out _, out _, out _)
                    ? NotRunning(id, PartitionState.Standby, "not assigned to this deployment by the consumer group")
                    : NotRunning(id, PartitionState.Unreachable, "not running on any member that answered");
            }
            try
            {
                return await region.Ask<PartitionStatus>(new GetPartitionStatus(id), timeout, cancellationToken);
            }
            catch (AskTimeoutException)
            {
                return NotRunning(id, PartitionState.Unreachable, $"no answer within {timeout.TotalSeconds:0} s");
            }
        }));
        return statuses.OrderBy(s => s.EntityId, StringComparer.Ordinal).ToArray();
    }

    /// <summary>The entity ids every member's region runs now (a member that does not answer contributes none).</summary>
    private static async Task<IEnumerable<string>> RunningAsync(ActorSystem system, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var members = Cluster.Get(system).State.Members
            .Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving);
        var regions = await Task.WhenAll(members.Select(async member =>
        {
            try
            {
                var state = await system.ActorSelection(new RootActorPath(member.Address) / "system" / "sharding" / AkkaSetup.RegionName)
                    .Ask<CurrentShardRegionState>(GetShardRegionState.Instance, timeout, cancellationToken);
                return state.Shards.SelectMany(s => s.EntityIds);
            }
            catch (AskTimeoutException)
            {
                return [];
            }
        }));
        return regions.SelectMany(ids => ids);
    }

    /// <summary>An id of neither form (none is built so) shows as an outbox partition with no consumer.</summary>
    private static PartitionStatus NotRunning(string id, PartitionState state, string why)
    {
        PartitionEntityId.TryParse(id, out var source, out var consumer, out var partition);
        return new PartitionStatus(id, consumer, source, partition, "", state, 0, 0, 0,
            why, DateTimeOffset.UtcNow, null);
    }
}
