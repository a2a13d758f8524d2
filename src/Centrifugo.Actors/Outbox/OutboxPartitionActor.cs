using Akka.Actor;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// The sharded entity that owns one outbox partition of one consumer. Sharding guarantees one live owner in a
/// healthy cluster; the per-partition advisory lock fences a stale one. Its work is one loop (a task): wait for the
/// turn → read batch → deliver + delete → report to the actor. The next transaction opens only after the previous batch
/// was committed, so a slow or stalled Centrifugo stops the reading and at most partition_select_limit rows are held
/// in memory.
/// </summary>
internal sealed class OutboxPartitionActor : ReceiveActor
{
    private readonly string _entityId;
    private readonly int _partition;
    private readonly OutboxConsumerRuntime _runtime;
    private readonly PartitionProgress _progress;
    private readonly WakeSignal _wake = new();
    private readonly EntityStop _stop = new();
    private readonly OutboxPassControl _control = new();
    private readonly Operations.PauseGate _pause;
    private readonly Operations.PausedPartitions _paused;

    public OutboxPartitionActor(string entityId, int partition, OutboxConsumerRuntime runtime, PartitionStatusBoard board, string node, Operations.PausedPartitions paused)
    {
        _entityId = entityId;
        _partition = partition;
        _runtime = runtime;
        _progress = new PartitionProgress(
            entityId, runtime.Consumer, "postgresql", partition.ToString(System.Globalization.CultureInfo.InvariantCulture), node, board);

        Receive<EnsurePartitionRunning>(_ => { });
        Receive<WakePartition>(_ => _wake.Set());
        Receive<GetPartitionStatus>(_ => Sender.Tell(_progress.Snapshot()));
        Receive<OutboxPassReport>(OnReport);
        Receive<StopPartition>(_ => BeginStop());
        Receive<StreamFinished>(_ => Context.Stop(Self));
        Receive<Operations.PauseChanged>(p => _progress.SetPaused(p.Paused));
        _paused = paused;
        _pause = new Operations.PauseGate(paused, entityId);
    }

    public static Props Props(string entityId, int partition, OutboxConsumerRuntime runtime, PartitionStatusBoard board, string node, Operations.PausedPartitions paused) =>
        Akka.Actor.Props.Create(() => new OutboxPartitionActor(entityId, partition, runtime, board, node, paused));

    protected override void PreStart()
    {
        _runtime.Wakes.Register(_partition, _wake);
        var self = Self;
        var token = _stop.Work;
        var stopToken = _stop.Waits;
        var processor = _runtime.Processor;
        var partition = _partition;
        var control = _control;
        var wake = _wake;
        var idleWait = _runtime.IdleSafetyPoll;
        var pause = _pause;
        var selectLimit = _runtime.Options.PartitionSelectLimit;

        // The partition's loop: wait for the turn → read (or take the batch read ahead) → deliver + complete → report.
        // A plain task, not an Akka.Streams graph: a stream moved every batch through two stage hand-offs (the source's
        // completion and the delivery stage's, each a message through the stream actor's mailbox) and back, i.e. four
        // more thread-pool hops per pass, each a wait for a CPU on a busy machine (docs/design.md, "Latency"). The
        // semantics are the graph's: strictly one batch at a time (the next read starts after the previous batch
        // committed), so a slow or stalled Centrifugo stops the reading and at most partition_select_limit rows (plus
        // one read ahead) are in memory; reports go to this actor for its status.
        _ = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    if (!await control.WaitForTurnAsync(wake, idleWait, stopToken))
                    {
                        break;
                    }
                    // Paused (operator): no new read; a read-ahead batch is rolled back first (its rows stay).
                    if (!await pause.PassAsync(async () =>
                        {
                            if (control.TakeReadAhead()?.Batch is { } held)
                            {
                                await held.DisposeAsync();
                            }
                        }, stopToken))
                    {
                        break;
                    }
                    // A batch read ahead while the previous one was delivered is already locked and waiting.
                    var read = control.TakeReadAhead() ?? await processor.ReadAsync(partition, token);
                    var report = await processor.FinishSafelyAsync(read, token, wake.TryConsume);
                    control.After(report, selectLimit);
                    self.Tell(report);
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
                await control.DropReadAheadAsync();
                self.Tell(StreamFinished.Instance);
            }
        }, CancellationToken.None);

        _progress.MoveTo(PartitionState.Starting);
        // Shown as paused from the moment the pause is known here; the wake brings an idle loop to its pause gate.
        _ = Operations.PauseWatch.RunAsync(_paused, _entityId, p =>
        {
            self.Tell(new Operations.PauseChanged(p));
            wake.Set();
        }, stopToken);
    }

    protected override void PostStop()
    {
        _runtime.Wakes.Unregister(_partition, _wake);
        _stop.Abort();
        // A read-ahead batch nobody will process: roll it back (its rows stay in the outbox).
        _ = _control.DropReadAheadAsync();
        _stop.Dispose();
        _progress.Remove();
    }

    private void OnReport(OutboxPassReport report) =>
        _progress.Record(report,
            // A short batch drained the partition: idle now, not only after the next (woken) empty read.
            report.Read >= _runtime.Options.PartitionSelectLimit || report.Next is not null ? PartitionState.Delivering : PartitionState.Idle);

    private void BeginStop()
    {
        if (!_progress.TryBeginStopping())
        {
            return;
        }
        // The source completes at its next pull (waits are interrupted); the in-flight batch may finish within
        // the drain budget, then the stream completes and the entity stops. Past the budget the batch is
        // cancelled: its transaction rolls back, nothing is deleted, and the next owner reads it again.
        _stop.Begin(_runtime.DrainTimeout);
    }

    private sealed record StreamFinished
    {
        public static readonly StreamFinished Instance = new();
    }
}
