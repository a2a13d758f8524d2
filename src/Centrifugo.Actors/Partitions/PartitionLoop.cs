namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The loop of every partition entity, whatever its source (run as a task): wait for work → pass the operator's pause
/// gate → one pass (read, deliver, settle) → report, and wait as <see cref="RetryPolicy"/> says after a failure.
/// Strictly one batch at a time, so a slow or stalled Centrifugo stops the reading and memory stays bounded by one batch
/// (plus what the source reads ahead). A plain task rather than an Akka.Streams graph: each stage hand-off of a graph is
/// a message through the stream actor's mailbox, a thread-pool hop per batch on a busy machine (docs/design.md,
/// "Latency").
/// </summary>
internal sealed class PartitionLoop(IPartitionRun run, IBatchGate gate, Action<PassReport> report)
{
    private readonly RetryPolicy _retry = new();

    /// <summary>
    /// Runs until <paramref name="stop"/> (no further batch) or <paramref name="work"/> (abandon the batch in flight), or
    /// until the source ends the run. Returns the exception that ended it unexpectedly, or null.
    /// </summary>
    public async Task<Exception?> RunAsync(CancellationToken stop, CancellationToken work)
    {
        var admitted = false;
        try
        {
            while (true)
            {
                if (_retry.Delay > TimeSpan.Zero)
                {
                    await Task.Delay(_retry.Delay, stop);
                }
                if (!await run.WaitForWorkAsync(Report, stop))
                {
                    return null;
                }
                // Paused (operator): nothing new starts; what the run must not hold while paused is released first.
                if (!await gate.AdmitAsync(() => run.ReleaseAsync(Report), stop))
                {
                    return null;
                }
                admitted = true;
                var pass = await run.PassAsync(stop, work);
                Report(pass);
                admitted = false;
                gate.Finish();
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // stopping: a wait ended, or the batch in flight was cancelled past the drain budget
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            if (admitted)
            {
                gate.Finish();
            }
        }
    }

    private void Report(PassReport pass)
    {
        _retry.After(pass);
        report(pass);
    }
}
