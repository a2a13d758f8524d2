using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Sharding;

/// <summary>
/// The wake signals of the partitions of one consumer that run on THIS node, by partition index. A wake source on
/// the node (LISTEN, census) sets the signal directly: no actor message, no hop through another node. Thread-safe.
/// </summary>
internal sealed class LocalPartitionWakes
{
    private readonly ConcurrentDictionary<int, WakeSignal> _signals = new();

    public void Register(int partition, WakeSignal signal) => _signals[partition] = signal;

    public void Unregister(int partition, WakeSignal signal) => _signals.TryRemove(KeyValuePair.Create(partition, signal));

    /// <summary>Wakes the partition when it runs here; false otherwise (its owner's node wakes it).</summary>
    public bool Wake(int partition)
    {
        if (_signals.TryGetValue(partition, out var signal))
        {
            signal.Set();
            return true;
        }
        return false;
    }

    /// <summary>Whether any partition of this consumer runs on this node.</summary>
    public bool Any => !_signals.IsEmpty;
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
