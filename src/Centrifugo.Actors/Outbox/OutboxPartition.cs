using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// An outbox partition as a <see cref="PartitionEntity"/> sees it. It opens at once: Sharding places the entity and the
/// partition's advisory lock, taken by every batch's transaction, fences a stale owner.
/// </summary>
internal sealed class OutboxPartitionSource(OutboxConsumerRuntime runtime, int partition) : IPartitionSource
{
    private readonly WakeSignal _wake = Register(runtime, partition);

    public PartitionState Waiting => PartitionState.Starting;

    public TimeSpan RetryOpen => TimeSpan.Zero;

    public TimeSpan DrainTimeout => runtime.DrainTimeout;

    public void Wake() => _wake.Set();

    public Task<IPartitionRun?> OpenAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IPartitionRun?>(new OutboxPartitionRun(
            runtime.Processor, new OutboxPassControl(), _wake, partition, runtime.Options.PartitionSelectLimit,
            runtime.IdleSafetyPoll, OutboxBatchProcessor.CompletionLinger));

    public void Dispose() => runtime.Wakes.Unregister(partition, _wake);

    private static WakeSignal Register(OutboxConsumerRuntime runtime, int partition)
    {
        var wake = new WakeSignal();
        runtime.Wakes.Register(partition, wake);
        return wake;
    }
}

/// <summary>
/// Reading one outbox partition: wait for the turn → read (or take the batch read ahead) → deliver + complete. A short
/// batch delivered in full keeps its DELETE + COMMIT back for <paramref name="linger"/>: a wake-up in that time sends it
/// with the next read (one round trip); otherwise, and at once when the entity stops or pauses, or someone waits for a
/// session of the consumer (<see cref="OutboxStore.SessionWanted"/>), it is sent alone and the session goes back to the
/// pool. Used by one loop at a time.
/// </summary>
internal sealed class OutboxPartitionRun(
    OutboxBatchProcessor processor,
    OutboxPassControl control,
    WakeSignal wake,
    int partition,
    int selectLimit,
    TimeSpan idleWait,
    TimeSpan linger) : IPartitionRun
{
    private static readonly TimeSpan DeferredCompletionTimeout = TimeSpan.FromSeconds(5);
    private DeferredCompletion? _deferred;

    public PartitionState Opened => PartitionState.Starting;

    public long? Lag => null;

    public long? Position => null;

    public void OnEnded(Action<bool> ended)
    {
        // Never ended by the source: the partition's lock fences a stale owner.
    }

    public async Task<bool> WaitForWorkAsync(Action<PassReport> report, CancellationToken stop)
    {
        if (_deferred is not null)
        {
            // A short batch went out in full; its DELETE + COMMIT waits briefly for the next wake-up to travel with
            // the next read.
            bool woken;
            try
            {
                woken = await wake.WaitAsync(linger, stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return false;
            }
            if (woken)
            {
                return true;
            }
            await CompleteDeferredAsync(report);
        }
        return await control.WaitForTurnAsync(wake, idleWait, stop);
    }

    public async Task ReleaseAsync(Action<PassReport> report)
    {
        // Paused: the delivered batch is completed and a batch read ahead rolled back (its rows stay): no transaction,
        // and so no partition lock, is held while paused.
        await CompleteDeferredAsync(report);
        if (control.TakeReadAhead()?.Batch is { } held)
        {
            await held.DisposeAsync();
        }
    }

    public async Task<PassReport> PassAsync(CancellationToken stop, CancellationToken work)
    {
        OutboxRead read;
        if (_deferred is { } pending && !processor.SessionWanted)
        {
            _deferred = null;
            read = await processor.ContinueDeferredAsync(pending, work);
        }
        else
        {
            if (await CompleteDeferredAsync(static _ => { }) is { } failed)
            {
                return failed;
            }
            // A batch read ahead while the previous one was delivered is already locked and waiting.
            read = control.TakeReadAhead() ?? await processor.ReadAsync(partition, work);
        }
        var pass = await processor.FinishSafelyAsync(read, work, wake.TryConsume, deferCompletion: !stop.IsCancellationRequested);
        _deferred = pass.Deferred;
        control.After(pass, selectLimit);
        return pass;
    }

    /// <summary>A short batch drained the partition: idle now, not only after the next (woken) empty read.</summary>
    public PartitionState StateAfter(PassReport report) =>
        report is OutboxPassReport { Next: not null } || report.Read >= selectLimit ? PartitionState.Delivering : PartitionState.Idle;

    public async ValueTask DisposeAsync()
    {
        await CompleteDeferredAsync(static _ => { });
        await control.DropReadAheadAsync();
    }

    /// <summary>
    /// The DELETE + COMMIT of delivered rows, when one waits: sent even when the entity is aborted or its drain budget is
    /// spent meanwhile (bounded by its own timeout instead), since rolling it back would only deliver the rows again.
    /// Returns the failed pass, if it failed.
    /// </summary>
    private async Task<OutboxPassReport?> CompleteDeferredAsync(Action<PassReport> report)
    {
        if (_deferred is not { } deferred)
        {
            return null;
        }
        _deferred = null;
        using var timeout = new CancellationTokenSource(DeferredCompletionTimeout);
        OutboxPassReport? failed;
        try
        {
            failed = await processor.CompleteDeferredAsync(deferred, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // rolled back: the rows are delivered again (at-least-once)
            failed = new OutboxPassReport(deferred.DeliveredIds.Count, 0, 0, false, null, "completing the delivered batch timed out");
        }
        if (failed is not null)
        {
            control.After(failed, selectLimit);
            report(failed);
        }
        return failed;
    }
}
