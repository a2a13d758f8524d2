using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding.External;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Places the entities of the Kafka partitions the group assigned to this node on this node, the way Alpakka Kafka's
/// cluster-sharding module does: the shard of every newly assigned partition is located here through Akka's
/// external shard allocation (the coordinator allocates it here, and moves it here from wherever it runs), and the
/// region is asked to run every assigned partition that no entity here reads yet, until one does. One per node; it
/// joins this node's group members once it runs, and they leave the group first thing on a coordinated shutdown.
/// </summary>
internal sealed class KafkaPlacement : ReceiveActor, IWithTimers
{
    public const string Name = "kafka-placement";

    private static readonly TimeSpan RelocateAfter = TimeSpan.FromSeconds(3);

    private readonly IActorRef _region;
    private readonly IReadOnlyList<KafkaConsumerRuntime> _consumers;
    private readonly IExternalShardAllocationClient _locations;
    private readonly Address _self;
    private readonly IActorRef _placement;
    private readonly ILogger _logger;
    // Shard → (assignment it was located for, when): located again for a new assignment, and every few seconds while
    // no entity here reads it (another member may have written its own location since).
    private readonly Dictionary<string, (long Assignment, DateTime At)> _located = new(StringComparer.Ordinal);

    public KafkaPlacement(IActorRef region, IReadOnlyList<KafkaConsumerRuntime> consumers, string typeName, ILogger logger)
    {
        _region = region;
        _consumers = consumers;
        _logger = logger;
        _locations = ExternalShardAllocation.Get(Context.System).ClientFor(typeName);
        _self = Cluster.Get(Context.System).SelfAddress;
        _placement = Self;
        Receive<Place>(_ => PlaceAll());
        Receive<Located>(l =>
        {
            if (l.Error is { } error)
            {
                foreach (var shard in l.Shards)
                {
                    _located.Remove(shard);
                }
                KafkaLog.LocateFailed(_logger, l.Shards.Count, error);
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, IReadOnlyList<KafkaConsumerRuntime> consumers, string typeName, ILogger logger) =>
        Akka.Actor.Props.Create(() => new KafkaPlacement(region, consumers, typeName, logger));

    protected override void PreStart()
    {
        foreach (var consumer in _consumers)
        {
            consumer.Hub.Assigned += OnAssigned;
        }
        var interval = _consumers.Min(c => c.Hub.Settings.PlacementInterval);
        Timers.StartPeriodicTimer(Place.Instance, Place.Instance, interval);
        foreach (var consumer in _consumers)
        {
            consumer.Hub.Join();
        }
    }

    protected override void PostStop()
    {
        foreach (var consumer in _consumers)
        {
            consumer.Hub.Assigned -= OnAssigned;
        }
    }

    /// <summary>Poll thread of a hub: place at once instead of at the next tick.</summary>
    private void OnAssigned(IReadOnlyList<Confluent.Kafka.TopicPartition> _) => _placement.Tell(Place.Instance);

    private void PlaceAll()
    {
        var now = DateTime.UtcNow;
        var unattached = new HashSet<string>(StringComparer.Ordinal);
        var locate = new Dictionary<string, Address>(StringComparer.Ordinal);
        foreach (var consumer in _consumers)
        {
            foreach (var (topic, partition, assignment) in consumer.Hub.Unattached())
            {
                var id = PartitionEntityId.Kafka(consumer.Consumer, topic, partition);
                unattached.Add(id);
                if (!_located.TryGetValue(id, out var located) || located.Assignment != assignment || now - located.At > RelocateAfter)
                {
                    _located[id] = (assignment, now);
                    locate[id] = _self;
                }
                _region.Tell(new EnsurePartitionRunning(id));
            }
        }
        foreach (var id in _located.Keys.Where(id => !unattached.Contains(id)).ToArray())
        {
            _located.Remove(id);
        }
        if (locate.Count > 0)
        {
            var self = Self;
            var shards = locate.Keys.ToArray();
            _locations.UpdateShardLocations(locate.ToImmutableDictionary()).ContinueWith(
                t => self.Tell(
                    new Located(shards, t.IsCompletedSuccessfully ? null : t.Exception?.GetBaseException().Message ?? "cancelled")),
                TaskScheduler.Default);
        }
    }

    private sealed record Place
    {
        public static readonly Place Instance = new();
    }

    private sealed record Located(IReadOnlyCollection<string> Shards, string? Error);
}
