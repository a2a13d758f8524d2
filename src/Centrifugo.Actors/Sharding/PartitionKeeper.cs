using Akka.Actor;
using Akka.Event;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Sharding;

/// <summary>Tells the keeper which partition entities exist right now (static for PostgreSQL, discovered for Kafka).</summary>
internal interface IPartitionCatalog
{
    Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Cluster singleton that starts every partition entity: every <c>interval</c> it sends
/// <see cref="EnsurePartitionRunning"/> to each known entity id through the shard region, which starts the ones that
/// are not running yet (first start, Kafka partitions added later). It is not on the fail-over path: the region
/// remembers its entities, so the shard coordinator restarts a lost node's partitions elsewhere by itself.
/// </summary>
internal sealed class PartitionKeeper : ReceiveActor, IWithTimers
{
    private readonly IActorRef _region;
    private readonly IReadOnlyList<IPartitionCatalog> _catalogs;
    private readonly TimeSpan _interval;
    private readonly CancellationTokenSource _cts = new();
    private readonly HashSet<IPartitionCatalog> _asking = [];
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public PartitionKeeper(IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, TimeSpan interval)
    {
        _region = region;
        _catalogs = catalogs;
        _interval = interval;

        // While this node shuts down its region hands its shards off; poking them now would make the coordinator
        // allocate them again (on a one-node cluster: to this very region) and stall the graceful shutdown.
        Receive<Tick>(_ =>
        {
            if (ShuttingDown(Context.System))
            {
                return;
            }
            // Each catalog on its own: a slow or failing one (Kafka metadata while the brokers are unreachable)
            // must not hold the partitions of the others. A catalog still answering the previous tick is not asked again.
            foreach (var catalog in _catalogs)
            {
                if (_asking.Add(catalog))
                {
                    catalog.EntityIdsAsync(_cts.Token).PipeTo(Self,
                        success: ids => new EntityIds(catalog, ids),
                        failure: e => new DiscoveryFailed(catalog, e));
                }
            }
        });
        Receive<EntityIds>(ids =>
        {
            _asking.Remove(ids.Catalog);
            if (ShuttingDown(Context.System))
            {
                return;
            }
            foreach (var id in ids.Ids)
            {
                _region.Tell(new EnsurePartitionRunning(id));
            }
        });
        Receive<DiscoveryFailed>(f =>
        {
            _asking.Remove(f.Catalog);
            _log.Warning("Partition discovery failed, retrying in {0}: {1}", _interval, f.Cause.Message);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, TimeSpan interval) =>
        Akka.Actor.Props.Create(() => new PartitionKeeper(region, catalogs, interval));

    protected override void PreStart()
    {
        Self.Tell(Tick.Instance);
        Timers.StartPeriodicTimer("keep", Tick.Instance, _interval);
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        _cts.Dispose();
    }

    private static bool ShuttingDown(ActorSystem system) => CoordinatedShutdown.Get(system).ShutdownReason is not null;

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record EntityIds(IPartitionCatalog Catalog, IReadOnlyList<string> Ids);

    private sealed record DiscoveryFailed(IPartitionCatalog Catalog, Exception Cause);
}
