using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// When an outbox partition reads next, like Centrifugo's loop: after a full batch, a batch read ahead or a failure
/// (once <see cref="RetryPolicy"/>'s wait is over) → at once; after a short batch or a busy try-lock → when woken (the
/// census finds rows every poll interval, or NOTIFY), with a long safety poll. Holds the batch read ahead. Written after
/// each pass and read before the next by one loop; the read-ahead slot is also emptied when the entity stops.
/// </summary>
internal sealed class OutboxPassControl
{
    private volatile bool _immediate = true;
    private readonly Lock _gate = new();
    private OutboxRead? _readAhead;
    private bool _closed;

    /// <summary>The next read goes at once, without waiting for a wake-up.</summary>
    public bool Immediate => _immediate;

    public OutboxRead? TakeReadAhead()
    {
        lock (_gate)
        {
            var next = _readAhead;
            _readAhead = null;
            return next;
        }
    }

    /// <summary>No more batches will be processed: roll back a waiting read-ahead now and any that arrives later
    /// (it holds the partition lock, which must not outlive this entity).</summary>
    public async Task DropReadAheadAsync()
    {
        OutboxRead? next;
        lock (_gate)
        {
            _closed = true;
            next = _readAhead;
            _readAhead = null;
        }
        if (next?.Batch is { } batch)
        {
            await batch.DisposeAsync();
        }
    }

    public void After(OutboxPassReport report, int selectLimit)
    {
        lock (_gate)
        {
            if (_closed)
            {
                _ = report.Next?.Batch?.DisposeAsync().AsTask();
            }
            else
            {
                _readAhead = report.Next;
            }
        }
        _immediate = report.Failed || report.Next is not null || (!report.LockBusy && report.Read >= selectLimit);
    }

    /// <summary>Returns false when the entity is stopping (no further read).</summary>
    public async Task<bool> WaitForTurnAsync(WakeSignal wake, TimeSpan idleWait, CancellationToken stopToken)
    {
        try
        {
            if (!_immediate)
            {
                await wake.WaitAsync(idleWait, stopToken);
            }
            return !stopToken.IsCancellationRequested;
        }
        catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
