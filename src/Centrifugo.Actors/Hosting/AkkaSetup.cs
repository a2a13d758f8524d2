using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Sharding;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Hosting;

/// <summary>Registry key of the partition shard region.</summary>
internal sealed class PartitionRegion;

/// <summary>Registry key of the partition keeper singleton (proxy).</summary>
internal sealed class PartitionKeeperSingleton;

internal static class AkkaSetup
{
    public const string RegionName = "partitions";

    /// <summary>
    /// Remoting + clustering + the partition shard region + the keeper singleton. With no seed nodes the node
    /// joins itself and forms a one-node cluster.
    /// </summary>
    public static AkkaConfigurationBuilder WithCentrifugoActors(this AkkaConfigurationBuilder builder, NodeRuntime runtime)
    {
        var cluster = runtime.Options.Cluster;
        builder
            .AddHocon(
                $$"""
                akka.cluster.run-coordinated-shutdown-when-down = on
                akka.cluster.shutdown-after-unsuccessful-join-seed-nodes = 60s
                akka.cluster.sharding.passivate-idle-entity-after = off
                # The newer least-shard strategy moves up to 20 shards (or 10 %) per rebalance round instead of one,
                # so a node that joins gets its share of partitions within a round or two.
                akka.cluster.sharding.least-shard-allocation-strategy.rebalance-absolute-limit = 20
                akka.cluster.sharding.least-shard-allocation-strategy.rebalance-relative-limit = 0.1
                akka.cluster.sharding.handoff-timeout = {{(int)(NodeRuntime.DrainTimeout.TotalSeconds + 20)}}s
                akka.coordinated-shutdown.phases.cluster-sharding-shutdown-region.timeout = {{(int)(NodeRuntime.DrainTimeout.TotalSeconds + 10)}}s
                akka.coordinated-shutdown.run-by-clr-shutdown-hook = on
                akka.remote.dot-netty.tcp.maximum-frame-size = 1MiB
                # Akka's timer wheel wakes a thread every tick even when nothing is due: at the default 10 ms that was
                # ~4.5% of a core on an idle node (docs/benchmarks.md). Every Akka timer this system relies on is
                # ≥ 1 s (cluster gossip and heartbeats, sharding retries, the keeper); partition waits and backoff
                # use .NET timers and are not affected.
                akka.scheduler.tick-duration = 100ms
                """, HoconAddMode.Prepend)
            .WithRemoting(RemotingFor(cluster))
            .WithClustering(new ClusterOptions { SeedNodes = cluster.SeedNodes.ToArray() })
            .WithShardRegion<PartitionRegion>(
                RegionName,
                (system, _, _) => entityId => EntityProps(entityId, runtime, Cluster.Get(system).SelfAddress.ToString()),
                new PartitionMessageExtractor(cluster.NumberOfShards),
                new ShardOptions
                {
                    StateStoreMode = StateStoreMode.DData,
                    RememberEntities = false,
                    HandOffStopMessage = StopPartition.Instance,
                    ShouldPassivateIdleEntities = false,
                })
            .WithSingleton<PartitionKeeperSingleton>(
                "partition-keeper",
                (_, registry, _) => PartitionKeeper.Props(
                    registry.Get<PartitionRegion>(),
                    runtime.Catalogs,
                    runtime.Outbox.Values
                        .Where(r => r.Options.PartitionNotificationChannel.Length > 0)
                        .Select(r => (Func<IWakeSource>)(() => new OutboxWakeSource(r, runtime.LoggerFactory)))
                        .Concat(runtime.Outbox.Values.Select(r => (Func<IWakeSource>)(() =>
                            new OutboxCensusWakeSource(r, runtime.LoggerFactory.CreateLogger("Centrifugo.Actors.Outbox")))))
                        .ToArray(),
                    KeeperInterval),
                new ClusterSingletonOptions(),
                createProxyToo: false)
            .WithClusterFormation(cluster, runtime.LoggerFactory);
        return builder;
    }

    /// <summary>
    /// An IP literal is bound as is (loopback in development). A DNS name (a StatefulSet pod's stable name) is
    /// advertised while binding 0.0.0.0, so the node starts before its DNS record has propagated.
    /// </summary>
    internal static RemoteOptions RemotingFor(Configuration.ClusterOptions cluster) =>
        System.Net.IPAddress.TryParse(cluster.Hostname, out _)
            ? new RemoteOptions { HostName = cluster.Hostname, Port = cluster.Port }
            : new RemoteOptions { HostName = "0.0.0.0", PublicHostName = cluster.Hostname, Port = cluster.Port };

    /// <summary>How often the keeper re-announces every partition (restart latency after a node loss).</summary>
    public static TimeSpan KeeperInterval { get; } = TimeSpan.FromSeconds(2);

    private static Props EntityProps(string entityId, NodeRuntime runtime, string node)
    {
        if (PartitionEntityId.TryParseOutbox(entityId, out var consumer, out var partition)
            && runtime.Outbox.TryGetValue(consumer, out var outbox)
            && partition >= 0 && partition < outbox.Options.NumPartitions)
        {
            return OutboxPartitionActor.Props(entityId, partition, outbox, runtime.Board, node);
        }
        if (PartitionEntityId.TryParseKafka(entityId, out var kafkaConsumer, out var topic, out var kafkaPartition)
            && runtime.Kafka.TryGetValue(kafkaConsumer, out var kafka)
            && kafkaPartition >= 0 && kafka.Options.Topics.Contains(topic, StringComparer.Ordinal))
        {
            return KafkaPartitionActor.Props(entityId, topic, kafkaPartition, kafka, runtime.Board, node,
                runtime.LoggerFactory.CreateLogger("Centrifugo.Actors.Kafka"));
        }
        return UnknownPartitionActor.Props(entityId, runtime.LoggerFactory.CreateLogger("Centrifugo.Actors.Sharding"));
    }
}

/// <summary>
/// An entity id this node has no configuration for (nodes run different configs during a rolling change):
/// say so once and stop; the keeper will try again and a node that knows it may get the shard later.
/// </summary>
internal sealed partial class UnknownPartitionActor : ReceiveActor
{
    public UnknownPartitionActor(string entityId, ILogger logger)
    {
        LogUnknown(logger, entityId);
        ReceiveAny(_ => Context.Stop(Self));
    }

    public static Props Props(string entityId, ILogger logger) =>
        Akka.Actor.Props.Create(() => new UnknownPartitionActor(entityId, logger));

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning,
        Message = "Partition {EntityId} is not in this node's configuration; not consuming it here")]
    private static partial void LogUnknown(ILogger logger, string entityId);
}
