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
            entityId, runtime.Consumer, PartitionSource.Postgresql, partition.ToString(System.Globalization.CultureInfo.InvariantCulture), node, board);

        Receive<EnsurePartitionRunning>(_ => { });
        Receive<WakePartition>(_ => _wake.Set());
        Receive<GetPartitionStatus>(_ => Sender.Tell(_progress.Snapshot()));
        Receive<OutboxPassReport>(OnReport);
        Receive<StopPartition>(_ => BeginStop());
        Receive<StreamFinished>(_ => Context.Stop(Self));
        Receive<Operations.PauseChanged>(p => _progress.SetPaused(p.Paused));
        _paused = paused;
        _pause = new Operations.PauseGate(paused, entityId);
        Receive<ConfirmPause>(c => _pause.ConfirmAsync(c.Paused, _wake.Set, _stop.Waits)
            .PipeTo(Sender, success: inForce => new PauseConfirmation(_entityId, c.Paused, inForce, _progress.Node)));
    }

    public static Props Props(string entityId, int partition, OutboxConsumerRuntime runtime, PartitionStatusBoard board, string node, Operations.PausedPartitions paused) =>
        Akka.Actor.Props.Create(() => new OutboxPartitionActor(entityId, partition, runtime, board, node, paused));

    protected override void PreStart()
    {
        _runtime.Wakes.Register(_partition, _wake);
        var self = Self;
        var token = _stop.Work;
        var stopToken = _stop.Waits;
        var wake = _wake;
        var pause = _pause;
        var loop = new OutboxPartitionLoop(
            _runtime.Processor, _control, wake, _partition, _runtime.Options.PartitionSelectLimit, _runtime.IdleSafetyPoll,
            OutboxBatchProcessor.CompletionLinger, pause, report => self.Tell(report));
        _ = Task.Run(async () =>
        {
            try
            {
                await loop.RunAsync(stopToken, token);
            }
            finally
            {
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
