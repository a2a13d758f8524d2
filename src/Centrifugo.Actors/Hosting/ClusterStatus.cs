using Akka.Actor;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// Cluster-wide view of the partitions: asks every known entity (from the catalogs) for its status through the shard
/// region, wherever it lives. Entities that do not answer within the timeout are listed as unreachable.
/// </summary>
internal static class ClusterStatus
{
    public static async Task<IReadOnlyList<PartitionStatus>> PartitionsAsync(
        IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var ids = new List<string>();
        foreach (var catalog in catalogs)
        {
            ids.AddRange(await catalog.EntityIdsAsync(cancellationToken));
        }

        var statuses = await Task.WhenAll(ids.Distinct(StringComparer.Ordinal).Select(async id =>
        {
            try
            {
                return await region.Ask<PartitionStatus>(new GetPartitionStatus(id), timeout, cancellationToken);
            }
            catch (AskTimeoutException)
            {
                return Unreachable(id, timeout);
            }
        }));
        return statuses.OrderBy(s => s.EntityId, StringComparer.Ordinal).ToArray();
    }

    private static PartitionStatus Unreachable(string id, TimeSpan timeout)
    {
        var (consumer, source, partition) = PartitionEntityId.TryParseOutbox(id, out var c, out var p)
            ? (c, "postgresql", p.ToString(System.Globalization.CultureInfo.InvariantCulture))
            : PartitionEntityId.TryParseKafka(id, out var kc, out var topic, out var kp)
                ? (kc, "kafka", $"{topic}/{kp}")
                : ("", "", "");
        return new PartitionStatus(id, consumer, source, partition, "", PartitionState.Unreachable, 0, 0, 0,
            $"no answer within {timeout.TotalSeconds:0} s", DateTimeOffset.UtcNow, null);
    }
}
