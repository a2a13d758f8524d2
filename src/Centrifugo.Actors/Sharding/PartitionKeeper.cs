using Akka.Actor;
using Akka.Event;

namespace Centrifugo.Actors.Sharding;

/// <summary>Tells the keeper which partition entities exist right now (static for PostgreSQL, discovered for Kafka).</summary>
internal interface IPartitionCatalog
{
    Task<IReadOnlyList<string>> EntityIdsAsync(CancellationToken cancellationToken);
}

/// <summary>Something the keeper runs while it lives (LISTEN connections), waking entities through the region.</summary>
internal interface IWakeSource : IAsyncDisposable
{
    Task StartAsync(Action<string> wakeEntity, CancellationToken cancellationToken);
}

/// <summary>
/// Cluster singleton that keeps every partition entity alive: every <c>interval</c> it sends
/// <see cref="EnsurePartitionRunning"/> to each known entity id through the shard region (starting the ones that
/// are not running, e.g. after their node left), and it runs the wake sources (LISTEN) once for the whole
/// cluster, so a NOTIFY wakes exactly the named partition wherever it lives.
/// </summary>
internal sealed class PartitionKeeper : ReceiveActor, IWithTimers
{
    private readonly IActorRef _region;
    private readonly IReadOnlyList<IPartitionCatalog> _catalogs;
    private readonly IReadOnlyList<Func<IWakeSource>> _wakeSourceFactories;
    private readonly TimeSpan _interval;
    private readonly List<IWakeSource> _wakeSources = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public PartitionKeeper(IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, IReadOnlyList<Func<IWakeSource>> wakeSourceFactories, TimeSpan interval)
    {
        _region = region;
        _catalogs = catalogs;
        _wakeSourceFactories = wakeSourceFactories;
        _interval = interval;

        // While this node shuts down its region hands its shards off; poking them now would make the coordinator
        // allocate them again (on a one-node cluster: to this very region) and stall the graceful shutdown.
        Receive<Tick>(_ =>
        {
            if (!ShuttingDown(Context.System))
            {
                RefreshAsync().PipeTo(Self);
            }
        });
        Receive<EntityIds>(ids =>
        {
            if (ShuttingDown(Context.System))
            {
                return;
            }
            foreach (var id in ids.Ids)
            {
                _region.Tell(new EnsurePartitionRunning(id));
            }
        });
        Receive<Status.Failure>(f => _log.Warning("Partition discovery failed, retrying in {0}: {1}", _interval, f.Cause.Message));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(IActorRef region, IReadOnlyList<IPartitionCatalog> catalogs, IReadOnlyList<Func<IWakeSource>> wakeSources, TimeSpan interval) =>
        Akka.Actor.Props.Create(() => new PartitionKeeper(region, catalogs, wakeSources, interval));

    protected override void PreStart()
    {
        var region = _region;
        var system = Context.System;
        foreach (var factory in _wakeSourceFactories)
        {
            var source = factory();
            _wakeSources.Add(source);
            // LISTEN failures are retried inside the source; a failing start must not kill the keeper.
            source.StartAsync(id =>
                {
                    if (!ShuttingDown(system))
                    {
                        region.Tell(new WakePartition(id));
                    }
                }, _cts.Token)
                .ContinueWith(t => _log.Warning("Wake source did not start: {0}", t.Exception?.GetBaseException().Message),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
        Self.Tell(Tick.Instance);
        Timers.StartPeriodicTimer("keep", Tick.Instance, _interval);
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        foreach (var source in _wakeSources)
        {
            _ = source.DisposeAsync().AsTask();
        }
        _cts.Dispose();
    }

    private static bool ShuttingDown(ActorSystem system) => CoordinatedShutdown.Get(system).ShutdownReason is not null;

    private async Task<EntityIds> RefreshAsync()
    {
        var all = new List<string>();
        foreach (var catalog in _catalogs)
        {
            all.AddRange(await catalog.EntityIdsAsync(_cts.Token));
        }
        return new EntityIds(all);
    }

    private sealed record Tick
    {
        public static readonly Tick Instance = new();
    }

    private sealed record EntityIds(IReadOnlyList<string> Ids);
}
