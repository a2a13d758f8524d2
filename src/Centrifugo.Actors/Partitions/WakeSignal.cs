namespace Centrifugo.Actors.Partitions;

/// <summary>
/// Coalescing wake-up flag (like Centrifugo's per-partition chan of capacity 1): any number of Set calls
/// while nobody waits result in one early wake-up. Thread-safe.
/// </summary>
internal sealed class WakeSignal
{
    private TaskCompletionSource _tcs = NewTcs();

    public void Set() => Volatile.Read(ref _tcs).TrySetResult();

    /// <summary>Waits until <see cref="Set"/> or the timeout; consumes the signal. Returns true when woken.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var tcs = Volatile.Read(ref _tcs);
        if (!tcs.Task.IsCompleted)
        {
            try
            {
                await tcs.Task.WaitAsync(timeout, cancellationToken);
            }
            catch (TimeoutException)
            {
                return false;
            }
        }
        Interlocked.CompareExchange(ref _tcs, NewTcs(), tcs);
        return true;
    }

    /// <summary>Consumes a pending signal without waiting: true when <see cref="Set"/> was called since the last consumption.</summary>
    public bool TryConsume()
    {
        var tcs = Volatile.Read(ref _tcs);
        if (!tcs.Task.IsCompleted)
        {
            return false;
        }
        Interlocked.CompareExchange(ref _tcs, NewTcs(), tcs);
        return true;
    }

    private static TaskCompletionSource NewTcs() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
