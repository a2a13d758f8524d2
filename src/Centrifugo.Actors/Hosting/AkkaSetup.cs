using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Hosting;

/// <summary>Registry key of the partition shard region.</summary>
internal sealed class PartitionRegion;

internal static class AkkaSetup
{
    public const string RegionName = "partitions";

    /// <summary>
    /// Remoting + clustering + the partition shard region + the paused set, then each source's part
    /// (<see cref="OutboxHosting.WithOutboxConsumers"/>, <see cref="KafkaHosting.WithKafkaConsumers"/>) and the
    /// PostgreSQL failure detector. With no seed nodes the node joins itself and forms a one-node cluster. The timings
    /// and why: docs/design.md ("Fail-over").
    /// </summary>
    public static AkkaConfigurationBuilder WithCentrifugoActors(this AkkaConfigurationBuilder builder, NodeRuntime runtime)
    {
        var cluster = runtime.Options.Cluster;
        return builder
            .AddHocon(ClusterHocon(cluster), HoconAddMode.Prepend)
            .WithRemoting(RemotingFor(cluster))
            .WithClustering(new ClusterOptions { SeedNodes = cluster.SeedNodes.ToArray(), Roles = Roles(runtime) })
            .WithActors((system, registry) =>
            {
                var node = Cluster.Get(system).SelfAddress.ToString();
                var region = ClusterSharding.Get(system).Start(
                    RegionName,
                    entityId => EntityProps(entityId, runtime, node),
                    ClusterShardingSettings.Create(system),
                    PartitionMessageExtractor.Instance,
                    new PartitionAllocationStrategy(RegionName),
                    StopPartition.Instance);
                registry.Register<PartitionRegion>(region);
                runtime.Paused.Bind(Akka.DistributedData.DistributedData.Get(system).Replicator);
                system.ActorOf(PausedPartitionsSubscriber.Props(runtime.Paused), "paused-partitions");
                PausedPartitions.HandOverOnLeave(system);
            })
            .WithOutboxConsumers<PartitionRegion>(runtime.Outbox.Values.ToArray(), KeeperInterval, runtime.LoggerFactory)
            .WithKafkaConsumers<PartitionRegion>(runtime.Kafka.Values.ToArray(), RegionName, runtime.LoggerFactory)
            .WithActors((system, _) =>
            {
                if (runtime.Liveness is { } liveness)
                {
                    system.ActorOf(PostgresLiveness.Props(liveness, runtime.LoggerFactory.CreateLogger("Centrifugo.Actors.Hosting")),
                        PostgresLiveness.Name);
                }
            })
            .WithClusterFormation(cluster, runtime.LoggerFactory);
    }

    /// <summary>The member's roles: one per outbox consumer it runs (keepers) and its pod's name (display).</summary>
    private static string[] Roles(NodeRuntime runtime) =>
        OutboxHosting.Roles(runtime.Outbox.Values)
            .Concat(runtime.Options.Cluster.PodName.Length > 0 ? [PodRolePrefix + runtime.Options.Cluster.PodName] : [])
            .ToArray();

    /// <summary>The role that carries a member's pod name.</summary>
    public const string PodRolePrefix = "pod-";

    /// <summary>
    /// The cluster's timings. Fail-over of a killed node = unreachable (failure detector, ~heartbeat pause + 1-2
    /// heartbeats) + SBR stable-after + removal (a leader tick) + re-allocation of its shards (remembered entities are
    /// restarted by the coordinator at once; regions retry every retry-interval). Faster downing is safe because a stale
    /// owner is fenced at the data (outbox: the partition's advisory lock; Kafka: docs/kafka.md).
    /// </summary>
    internal static string ClusterHocon(Configuration.ClusterOptions cluster) =>
        $$"""
        akka.cluster.run-coordinated-shutdown-when-down = on
        akka.cluster.shutdown-after-unsuccessful-join-seed-nodes = 60s
        akka.cluster.failure-detector.heartbeat-interval = {{Ms(cluster.HeartbeatInterval)}}
        akka.cluster.failure-detector.acceptable-heartbeat-pause = {{Ms(cluster.AcceptableHeartbeatPause)}}
        akka.cluster.split-brain-resolver.stable-after = {{Ms(cluster.DowningStableAfter)}}
        # How often the failure detector's verdicts are acted on (default 1 s): up to 1 s of a kill's silence was this
        # tick after the detector already gave up on the node. A check of each monitored node's heartbeat history.
        akka.cluster.unreachable-nodes-reaper-interval = 250ms
        # The leader removes a downed node once every member has seen the downing, which spreads by gossip (default one
        # round per second: measured 1 s from Down to removal on 3 nodes). Gossip is a small message to one member.
        akka.cluster.gossip-interval = 500ms
        # After a node is removed, singletons (the shard coordinator, the keeper) wait this long before taking over. It
        # defaults to stable-after (another 3-4 s on every fail-over) and exists to keep two singletons from overlapping
        # while the downed side shuts itself down; our partitions are fenced at the data instead (docs/design.md).
        akka.cluster.down-removal-margin = 500ms
        akka.cluster.singleton.hand-over-retry-interval = 500ms
        # After the oldest node changed, a singleton proxy asks where the singleton runs every this often and buffers
        # until it knows (default 1 s): the keepers' proxies.
        akka.cluster.singleton-proxy.singleton-identification-interval = 250ms
        # Akka.NET 1.5's "ClusterSingletonProxy failed to find an associated singleton ... after 30 seconds" fires in the
        # millisecond a proxy starts looking (its timer's first tick has no delay), on every start and every move of the
        # singleton (akkadotnet/akka.net#8568): a warning on each pod start that names no fault. Off; a singleton that
        # really stays unknown shows as partitions that do not run (`status`, `partitions list`).
        akka.cluster.singleton-proxy.log-singleton-identification-failure = off
        # The leader removes a downed node at its next tick: 500 ms instead of 1 s off every fail-over.
        akka.cluster.leader-actions-interval = 500ms
        # Each partition is its own shard (PartitionMessageExtractor) and the region remembers its entities, so the
        # coordinator restarts the partitions of a lost node, and re-homes a handed-off one, without waiting for a
        # message. Remembered entities live in replicated memory only (no LightningDB files): a cluster that
        # restarts from zero starts them through the keeper.
        akka.cluster.sharding.state-store-mode = ddata
        akka.cluster.sharding.remember-entities = on
        akka.cluster.sharding.remember-entities-store = ddata
        akka.cluster.sharding.distributed-data.durable.keys = []
        # Sharding's replicated state (the coordinator's, and each shard's remembered entities) is read and written with
        # majority consistency, which Akka raises to at least 5 nodes by default: in a cluster of up to 5 nodes every
        # read and write needs every node. A node that is leaving, or killed and not yet removed, then fails every read:
        # a shard handed off by a SIGTERMed node failed to load its remembered entities after waiting-for-state-timeout
        # and stayed down until updating-state-timeout (5 s) ended (seen in the Kafka chaos test: a 5.7 s gap).
        # A plain majority still intersects every other majority; a stale owner is fenced at the data anyway.
        akka.cluster.sharding.distributed-data.majority-min-cap = 0
        akka.cluster.sharding.passivate-idle-entity-after = off
        akka.cluster.sharding.rebalance-interval = {{Ms(cluster.RebalanceInterval)}}
        # The default replicator carries the paused partitions and the Kafka shards' locations. A change reaches the
        # other nodes with the next delta propagation (gossip-interval / 5, at least 200 ms) and their subscribers at
        # the next notification; a Kafka partition the group moves between running nodes waits for both.
        akka.cluster.distributed-data.gossip-interval = 1s
        akka.cluster.distributed-data.notify-subscribers-interval = 100ms
        akka.cluster.sharding.retry-interval = 500ms
        akka.cluster.sharding.coordinator-failure-backoff = 1s
        akka.cluster.sharding.shard-failure-backoff = 1s
        akka.cluster.sharding.entity-restart-backoff = 1s
        akka.cluster.sharding.waiting-for-state-timeout = 1s
        akka.cluster.sharding.handoff-timeout = {{(int)(NodeRuntime.DrainTimeout.TotalSeconds + 20)}}s
        # Kafka consumers leave their groups here: each revocation lets in-flight batches drain and commits.
        akka.coordinated-shutdown.phases.before-service-unbind.timeout = {{(int)(NodeRuntime.DrainTimeout.TotalSeconds + 5)}}s
        akka.coordinated-shutdown.phases.cluster-sharding-shutdown-region.timeout = {{(int)(NodeRuntime.DrainTimeout.TotalSeconds + 10)}}s
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = on
        akka.remote.dot-netty.tcp.maximum-frame-size = 1MiB
        # Akka's timer wheel wakes a thread every tick even when nothing is due: at the default 10 ms that was
        # ~4.5% of a core on an idle node (docs/benchmarks.md). The Akka timers this system relies on are
        # ≥ 250 ms (cluster gossip and heartbeats, sharding retries, the keeper, a Kafka entity's standby check);
        # partition waits and backoff use .NET timers and are not affected.
        akka.scheduler.tick-duration = 100ms
        """;

    private static string Ms(TimeSpan value) => $"{(long)value.TotalMilliseconds}ms";

    /// <summary>
    /// An IP literal is bound as is (loopback in development). A DNS name (a StatefulSet pod's stable name) is
    /// advertised while binding 0.0.0.0, so the node starts before its DNS record has propagated.
    /// </summary>
    internal static RemoteOptions RemotingFor(Configuration.ClusterOptions cluster) =>
        System.Net.IPAddress.TryParse(cluster.Hostname, out _)
            ? new RemoteOptions { HostName = cluster.Hostname, Port = cluster.Port }
            : new RemoteOptions { HostName = "0.0.0.0", PublicHostName = cluster.Hostname, Port = cluster.Port };

    /// <summary>How often the keeper announces every partition (first start, Kafka partitions added later).</summary>
    public static TimeSpan KeeperInterval { get; } = TimeSpan.FromSeconds(5);

    /// <summary>The entity of <paramref name="entityId"/>: its source's, or one that says this node does not know it.</summary>
    private static Props EntityProps(string entityId, NodeRuntime runtime, string node) =>
        OutboxHosting.EntityProps(entityId, runtime.Outbox, node, runtime.Board, runtime.Paused, runtime.LoggerFactory)
        ?? KafkaHosting.EntityProps(entityId, runtime.Kafka, node, runtime.Board, runtime.Paused, runtime.LoggerFactory)
        ?? UnknownPartitionActor.Props(entityId, runtime.LoggerFactory.CreateLogger("Centrifugo.Actors.Sharding"));
}
