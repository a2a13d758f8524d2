using System.Collections.Concurrent;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

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
