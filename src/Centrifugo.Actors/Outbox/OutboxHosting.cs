using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Hosting;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// The outbox source's part of a node: the runtime of each postgresql consumer (built before the actor system
/// starts), its actors (this node's wake sources, one keeper singleton per consumer) and its partition entities.
/// Hosting composes it (<c>WithCentrifugoActors</c>).
/// </summary>
internal static class OutboxHosting
{
    /// <summary>
    /// The runtime of one postgresql consumer, its store checked (tables, columns, indexes): a database that does not
    /// answer or an outbox table that does not fit refuses to start, with the consumer's name.
    /// </summary>
    public static async Task<OutboxConsumerRuntime> StartConsumerAsync(
        string name, PostgresConsumerOptions options, ApiOptions api, ICentrifugoClient client, TimeSpan drainTimeout,
        ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var store = new OutboxStore(name, options, loggerFactory,
            TransactionFence.For(api.Timeout, api.MaxBatchSize, options.PartitionSelectLimit));
        try
        {
            var runtime = new OutboxConsumerRuntime(
                name, options, store,
                new OutboxBatchProcessor(store, client, loggerFactory.CreateLogger("Centrifugo.Actors.Outbox")),
                drainTimeout);
            try
            {
                await store.InitializeAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new StartupException($"in consumer {name} (postgresql): {ex.Message}", ex);
            }
            return runtime;
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Besides the table's lock, a partition pass takes (hash of consumer name, partition) (<see cref="OutboxSql.Lock"/>);
    /// two configured consumers whose 32-bit hashes collide would wait for each other's partitions on different
    /// tables, so that is refused at start-up instead of discovered as a slowdown.
    /// </summary>
    public static void CheckLockKeysAreDistinct(IEnumerable<string> consumers)
    {
        var collision = consumers
            .GroupBy(OutboxLockKey.For)
            .FirstOrDefault(g => g.Count() > 1);
        if (collision is not null)
        {
            var names = string.Join(" and ", collision);
            throw new ConfigException($"consumers {names} have the same advisory-lock key; rename one of them");
        }
    }

    /// <summary>
    /// The cluster role of every consumer here (as <see cref="PartitionSpread.ConsumerOf"/> names it): its keeper runs
    /// on the oldest member that has the role.
    /// </summary>
    public static IEnumerable<string> Roles(IEnumerable<OutboxConsumerRuntime> consumers) =>
        consumers.Select(r => PartitionSpread.RoleOf(KeeperConsumer(r)));

    /// <summary>
    /// This node's wake sources (LISTEN where a notification channel is set, and the census, for every consumer) and
    /// one keeper per consumer, on the oldest member that knows it (its role): during a rolling change the oldest node
    /// may run a configuration without a new consumer. The keepers announce the partitions through the shard region
    /// registered as <typeparamref name="TRegion"/>.
    /// </summary>
    public static AkkaConfigurationBuilder WithOutboxConsumers<TRegion>(
        this AkkaConfigurationBuilder builder, IReadOnlyCollection<OutboxConsumerRuntime> consumers, TimeSpan keeperInterval,
        ILoggerFactory loggerFactory) =>
        builder.WithActors((system, registry) =>
        {
            system.ActorOf(NodeWakeSources.Props(WakeSources(consumers, loggerFactory)), "wake-sources");
            var region = registry.Get<TRegion>();
            foreach (var consumer in consumers)
            {
                var role = PartitionSpread.RoleOf(KeeperConsumer(consumer));
                system.ActorOf(ClusterSingletonManager.Props(
                        PartitionKeeper.Props(region, [new OutboxPartitionCatalog(consumer)], keeperInterval), PoisonPill.Instance,
                        ClusterSingletonManagerSettings.Create(system).WithRole(role).WithSingletonName("keeper")),
                    "keeper-" + role);
            }
        });

    /// <summary>
    /// The entity of an outbox partition of this configuration (<see cref="PartitionEntityId.Outbox"/>); null when
    /// <paramref name="entityId"/> is not one.
    /// </summary>
    public static Props? EntityProps(
        string entityId, IReadOnlyDictionary<string, OutboxConsumerRuntime> consumers, string node, PartitionStatusBoard board,
        PausedPartitions paused, ILoggerFactory loggerFactory)
    {
        if (!PartitionEntityId.TryParseOutbox(entityId, out var consumer, out var partition)
            || !consumers.TryGetValue(consumer, out var outbox)
            || partition < 0 || partition >= outbox.Options.NumPartitions)
        {
            return null;
        }
        var progress = new PartitionProgress(entityId, outbox.Consumer, PartitionSource.Postgresql,
            partition.ToString(System.Globalization.CultureInfo.InvariantCulture), node, board);
        return PartitionEntity.Props(entityId, () => new OutboxPartitionSource(outbox, partition), progress, paused,
            loggerFactory.CreateLogger("Centrifugo.Actors.Outbox"));
    }

    /// <summary>The consumer as the keeper's role and the shard allocation name it: "pg:&lt;consumer&gt;".</summary>
    private static string KeeperConsumer(OutboxConsumerRuntime runtime) => $"{PartitionEntityId.OutboxPrefix}:{runtime.Consumer}";

    private static IReadOnlyList<Func<IWakeSource>> WakeSources(
        IEnumerable<OutboxConsumerRuntime> consumers, ILoggerFactory loggerFactory) =>
        consumers
            .Where(r => r.Options.PartitionNotificationChannel.Length > 0)
            .Select(r => (Func<IWakeSource>)(() => new OutboxWakeSource(r, loggerFactory)))
            .Concat(consumers.Select(r => (Func<IWakeSource>)(() =>
                new OutboxCensusWakeSource(r, loggerFactory.CreateLogger("Centrifugo.Actors.Outbox")))))
            .ToArray();
}
