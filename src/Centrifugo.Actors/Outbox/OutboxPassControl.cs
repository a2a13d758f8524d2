using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// Decides how long the source waits before the next read, like Centrifugo's loop: a full batch → immediately;
/// a short batch or a busy try-lock → until woken (the census finds rows every poll interval, or NOTIFY), with a
/// long safety poll; a failure → capped exponential backoff (reset after a success). Written by the delivery stage, read by the source; the strict
/// one-at-a-time hand-off between the two stages orders the accesses.
/// </summary>
internal sealed class OutboxPassControl
{
    private volatile bool _immediate = true;
    private readonly Lock _gate = new();
    private OutboxRead? _readAhead;
    private bool _closed;
    private int _retries;
    private TimeSpan _backoff;

    /// <summary>The wait before the next read after a failed pass (zero when the last pass did not fail).</summary>
    public TimeSpan Backoff => _backoff;

    /// <summary>Consecutive failed passes counted for the backoff (reset by progress or success).</summary>
    public int Retries => _retries;

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
        if (report.Failed)
        {
            if (report.Delivered + report.DeadLettered > 0 && report.Failure is { Kind: FailureKind.Temporary })
            {
                // Progress (a delivered or dead-lettered prefix) resets the backoff and the failed command is retried
                // at once, at the head of the next read: Centrifugo's loop retries the failing command alone and
                // resets on success. Only consecutive passes that move nothing climb the capped backoff, so an
                // immediate retry is always paid for by progress. Counting every partly failed pass as a failure
                // made a backlog under a 1-2 % error-100 rate (nearly every batch holds one) drain at the pace of
                // the 5 s cap (docs/benchmarks.md, "Error rate").
                _retries = 0;
                _backoff = TimeSpan.Zero;
                _immediate = true;
                return;
            }

            _retries++;
            _backoff = Delivery.Backoff.Next(_retries);
            _immediate = false;
            return;
        }
        _retries = 0;
        _backoff = TimeSpan.Zero;
        _immediate = report.Next is not null || (!report.LockBusy && report.Read >= selectLimit);
    }

    /// <summary>Returns false when the entity is stopping (no further read).</summary>
    public async Task<bool> WaitForTurnAsync(WakeSignal wake, TimeSpan idleWait, CancellationToken stopToken)
    {
        try
        {
            if (_backoff > TimeSpan.Zero)
            {
                await Task.Delay(_backoff, stopToken);
            }
            else if (!_immediate)
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
