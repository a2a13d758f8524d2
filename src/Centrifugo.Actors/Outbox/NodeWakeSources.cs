using Akka.Actor;
using Akka.Event;

namespace Centrifugo.Actors.Outbox;

/// <summary>Something a node runs while it lives (LISTEN connections, the census), waking the partitions it hosts.</summary>
internal interface IWakeSource : IAsyncDisposable
{
    Task StartAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Runs this node's wake sources (one LISTEN connection and one census loop per postgresql consumer) for as long as
/// the node lives. Every node runs its own, so wake-ups never depend on another node: when a node dies, the nodes that
/// take over its partitions already listen. A NOTIFY for a partition hosted elsewhere is ignored here and acted on by
/// its owner's node.
/// </summary>
internal sealed class NodeWakeSources : ReceiveActor
{
    private readonly IReadOnlyList<Func<IWakeSource>> _factories;
    private readonly List<IWakeSource> _sources = [];
    private readonly CancellationTokenSource _cts = new();
    private readonly ILoggingAdapter _log = Context.GetLogger();

    public NodeWakeSources(IReadOnlyList<Func<IWakeSource>> factories) => _factories = factories;

    public static Props Props(IReadOnlyList<Func<IWakeSource>> factories) =>
        Akka.Actor.Props.Create(() => new NodeWakeSources(factories));

    protected override void PreStart()
    {
        var log = _log;
        foreach (var factory in _factories)
        {
            var source = factory();
            _sources.Add(source);
            // LISTEN failures are retried inside the source; a failing start must not stop the others.
            source.StartAsync(_cts.Token)
                .ContinueWith(t => log.Warning("Wake source did not start: {0}", t.Exception?.GetBaseException().Message),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    protected override void PostStop()
    {
        _cts.Cancel();
        foreach (var source in _sources)
        {
            _ = source.DisposeAsync().AsTask();
        }
        _cts.Dispose();
    }
}
