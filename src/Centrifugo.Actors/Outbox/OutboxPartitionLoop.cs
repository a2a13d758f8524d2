using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// The loop of one outbox partition (run by <see cref="OutboxPartitionActor"/> as a task): wait for the turn → read (or
/// take the batch read ahead) → deliver + complete → report. Strictly one batch at a time: the next read starts after
/// the previous batch committed, so a slow or stalled Centrifugo stops the reading and at most partition_select_limit
/// rows (plus one read ahead) are in memory.
/// </summary>
/// <remarks>
/// A plain task, not an Akka.Streams graph: the graph (<c>UnfoldAsync → SelectAsync(1) → Sink</c>) moved every batch
/// through two stage hand-offs, each a message through the stream actor's mailbox, i.e. more thread-pool hops per pass,
/// each a wait for a CPU on a busy machine (docs/design.md, "Latency"). A short batch delivered in full keeps its
/// DELETE + COMMIT back for <paramref name="linger"/>: a wake-up in that time sends it with the next read (one round trip);
/// otherwise, and at once when the entity stops, is aborted or paused, or someone waits for a session of the consumer
/// (<see cref="OutboxStore.SessionWanted"/>), it is sent alone and the session goes back to the pool.
/// </remarks>
/// <param name="gate">Admits every batch (the operator's pause, <see cref="Operations.PauseGate"/>).</param>
/// <param name="report">Receives every pass report (status, metrics).</param>
internal sealed class OutboxPartitionLoop(
    OutboxBatchProcessor processor,
    OutboxPassControl control,
    WakeSignal wake,
    int partition,
    int selectLimit,
    TimeSpan idleWait,
    TimeSpan linger,
    Operations.IBatchGate gate,
    Action<OutboxPassReport> report)
{
    /// <summary>Runs until <paramref name="stopToken"/> (no further batch) or <paramref name="token"/> (abandon the batch in flight).</summary>
    public async Task RunAsync(CancellationToken stopToken, CancellationToken token)
    {
        DeferredCompletion? deferred = null;
        var admitted = false; // a batch passed the gate and has not reported yet
        try
        {
            while (true)
            {
                OutboxRead? read = null;
                if (deferred is not null)
                {
                    // A short batch went out in full; its DELETE + COMMIT waits briefly for the next wake-up to
                    // travel with the next read.
                    bool woken;
                    try
                    {
                        woken = await wake.WaitAsync(linger, stopToken);
                    }
                    catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
                    {
                        woken = false;
                    }
                    var pending = deferred;
                    deferred = null;
                    if (woken && !stopToken.IsCancellationRequested && !processor.SessionWanted && (admitted = gate.TryAdmit()))
                    {
                        read = await processor.ContinueDeferredAsync(pending, token);
                    }
                    else
                    {
                        if (woken)
                        {
                            wake.Set(); // not consumed here: the wait below sees it
                        }
                        if (await CompleteDeferredAsync(pending) is { } failed)
                        {
                            control.After(failed, selectLimit);
                            report(failed);
                        }
                    }
                }

                if (read is null)
                {
                    if (!await control.WaitForTurnAsync(wake, idleWait, stopToken))
                    {
                        break;
                    }
                    // Paused (operator): no new read; a read-ahead batch is rolled back first (its rows stay).
                    if (!await gate.AdmitAsync(async () =>
                        {
                            if (control.TakeReadAhead()?.Batch is { } held)
                            {
                                await held.DisposeAsync();
                            }
                        }, stopToken))
                    {
                        break;
                    }
                    admitted = true;
                    // A batch read ahead while the previous one was delivered is already locked and waiting.
                    read = control.TakeReadAhead() ?? await processor.ReadAsync(partition, token);
                }
                var pass = await processor.FinishSafelyAsync(read, token, wake.TryConsume, deferCompletion: !stopToken.IsCancellationRequested);
                deferred = pass.Deferred;
                control.After(pass, selectLimit);
                report(pass);
                admitted = false;
                gate.Finish();
            }
        }
        catch (Exception e) when (!token.IsCancellationRequested)
        {
            processor.ReportStreamFailure(partition, e);
        }
        catch (OperationCanceledException)
        {
            // stopping: the batch in flight was cancelled past the drain budget and rolled back
        }
        finally
        {
            if (admitted)
            {
                gate.Finish();
            }
            if (deferred is not null)
            {
                await CompleteDeferredAsync(deferred);
            }
            await control.DropReadAheadAsync();
        }
    }

    /// <summary>
    /// The DELETE + COMMIT of delivered rows: sent even when the entity is aborted or its drain budget is spent meanwhile
    /// (bounded by its own timeout instead), since rolling it back would only deliver the rows again.
    /// </summary>
    private async Task<OutboxPassReport?> CompleteDeferredAsync(DeferredCompletion deferred)
    {
        using var timeout = new CancellationTokenSource(DeferredCompletionTimeout);
        try
        {
            return await processor.CompleteDeferredAsync(deferred, timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // rolled back: the rows are delivered again (at-least-once)
            return new OutboxPassReport(deferred.DeliveredIds.Count, 0, 0, false, null, "completing the delivered batch timed out");
        }
    }

    private static readonly TimeSpan DeferredCompletionTimeout = TimeSpan.FromSeconds(5);
}
