namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The two-stage stop every partition entity follows on a hand-off: waits (next read, backoff, acquisition) end at
/// once, the attempt in flight gets the drain budget and is cancelled after it. Not thread-safe: the owning actor
/// calls it; the tokens are read by its stream.
/// </summary>
internal sealed class EntityStop : IDisposable
{
    private readonly CancellationTokenSource _waits = new();
    private readonly CancellationTokenSource _work = new();

    /// <summary>Cancelled as soon as the stop begins: ends waiting for the next read, a backoff, an acquisition.</summary>
    public CancellationToken Waits => _waits.Token;

    /// <summary>Cancelled when the drain budget is spent: rolls back / abandons the attempt in flight.</summary>
    public CancellationToken Work => _work.Token;

    /// <summary>Ends the waits now and gives the work <paramref name="drainBudget"/>.</summary>
    public void Begin(TimeSpan drainBudget)
    {
        _waits.Cancel();
        _work.CancelAfter(drainBudget);
    }

    /// <summary>The entity is gone: cancel everything now.</summary>
    public void Abort()
    {
        _waits.Cancel();
        _work.Cancel();
    }

    public void Dispose()
    {
        _waits.Dispose();
        _work.Dispose();
    }
}
