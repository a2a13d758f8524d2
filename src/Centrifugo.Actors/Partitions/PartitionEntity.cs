using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The sharded entity of one partition of one consumer, for every source; the source is an adapter
/// (<see cref="IPartitionSource"/>: open a run; <see cref="IPartitionRun"/>: wait, pass, settle, position). States:
/// <list type="bullet">
/// <item>Starting: no run. Opens one at once, and again every <see cref="IPartitionSource.RetryOpen"/> while the source
/// says not now (Kafka: the group assigned the partition to another member; shown as standby).</item>
/// <item>Running: the run's <see cref="PartitionLoop"/> reads and delivers one batch at a time.</item>
/// <item>Draining: a stop (hand-off, shutdown) or a revocation ended the waits; the batch in flight gets the drain
/// budget and is cancelled after it (lost: at once). Then the run is disposed (its final settlement) and the entity
/// stops, or after a revocation starts again.</item>
/// </list>
/// The operator's pause is a gate in the loop (<see cref="PauseGate"/>), watched in every state.
/// </summary>
internal sealed class PartitionEntity : ReceiveActor, IWithTimers
{
    private readonly string _entityId;
    private readonly Func<IPartitionSource> _createSource;
    private readonly PartitionProgress _progress;
    private readonly PausedPartitions _paused;
    private readonly PauseGate _pause;
    private readonly ILogger _logger;
    private readonly EntityStop _life = new();
    private IPartitionSource? _source;
    private IPartitionRun? _run;
    private EntityStop? _runStop;
    private Task _loop = Task.CompletedTask;
    private bool _stopping;

    public PartitionEntity(
        string entityId, Func<IPartitionSource> createSource, PartitionProgress progress, PausedPartitions paused, ILogger logger)
    {
        _entityId = entityId;
        _createSource = createSource;
        _progress = progress;
        _paused = paused;
        _pause = new PauseGate(paused, entityId);
        _logger = logger;
        Starting();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    private IPartitionSource Source => _source ?? throw new InvalidOperationException("The entity has not started.");

    public static Props Props(
        string entityId, Func<IPartitionSource> createSource, PartitionProgress progress, PausedPartitions paused, ILogger logger) =>
        Akka.Actor.Props.Create(() => new PartitionEntity(entityId, createSource, progress, paused, logger));

    protected override void PreStart()
    {
        _source = _createSource();
        _progress.MoveTo(_source.Waiting);
        var self = Self;
        var source = _source;
        // Shown as paused from the moment the pause is known here; the wake brings an idle loop to its pause gate.
        _ = PauseWatch.RunAsync(_paused, _entityId, p =>
        {
            self.Tell(new PauseChanged(p));
            source.Wake();
        }, _life.Waits);
        Self.Tell(Open.Instance);
    }

    protected override void PostStop()
    {
        _runStop?.Abort();
        _life.Abort();
        if (_run is { } run)
        {
            // Stopped without a drain (the actor system terminates): the run settles once its loop has ended.
            _ = CloseAfterAsync(_loop, run);
        }
        _source?.Dispose();
        _life.Dispose();
        _progress.Remove();
    }

    private void Starting()
    {
        Common();
        Receive<Open>(_ => Source.OpenAsync(_life.Waits).PipeTo(Self, Self,
            run => new Opened(run, null), e => new Opened(null, e.GetBaseException())));
        Receive<Opened>(o =>
        {
            if (o.Run is { } run)
            {
                Run(run);
                return;
            }
            if (o.Error is { } error)
            {
                PartitionsLog.OpenFailed(_logger, _entityId, error.Message);
            }
            Timers.StartSingleTimer(Open.Instance, Open.Instance, Source.RetryOpen);
        });
        Receive<StopPartition>(_ => Context.Stop(Self));
    }

    private void Run(IPartitionRun run)
    {
        _run = run;
        var runStop = _runStop = new EntityStop();
        var self = Self;
        run.OnEnded(lost => self.Tell(new RunEnded(lost)));
        _loop = new PartitionLoop(run, _pause, pass => self.Tell(new Passed(pass))).RunAsync(runStop.Waits, runStop.Work)
            .PipeTo(self, self, e => new LoopEnded(e), e => new LoopEnded(e));
        _progress.MoveTo(run.Opened);
        Become(() =>
        {
            Common();
            Receive<Passed>(p => Record(run, p.Report));
            Receive<RunEnded>(e => Drain(run, e.Lost));
            Receive<StopPartition>(_ => Stop(run));
            Receive<LoopEnded>(e => Close(run, e.Error));
        });
    }

    private void Drain(IPartitionRun run, bool lost)
    {
        var runStop = _runStop!;
        if (lost)
        {
            runStop.Abort();
        }
        else
        {
            // Revoked: the batch in flight may finish within the drain budget; nothing new is read.
            runStop.Begin(Source.DrainTimeout);
        }
        Become(() =>
        {
            Common();
            Receive<Passed>(p => Record(run, p.Report));
            Receive<RunEnded>(e =>
            {
                if (e.Lost)
                {
                    runStop.Abort();
                }
            });
            Receive<StopPartition>(_ =>
            {
                _stopping = true;
                _progress.TryBeginStopping();
            });
            Receive<LoopEnded>(e => Close(run, e.Error));
        });
    }

    private void Stop(IPartitionRun run)
    {
        _stopping = true;
        _progress.TryBeginStopping();
        Drain(run, lost: false);
    }

    /// <summary>The loop has ended: the run settles (final commit, completion), then the entity stops or starts again.</summary>
    private void Close(IPartitionRun run, Exception? error)
    {
        if (error is not null && !_stopping)
        {
            PartitionsLog.LoopFailed(_logger, _entityId, error);
        }
        var self = Self;
        run.DisposeAsync().AsTask().PipeTo(self, self, () => Closed.Instance, _ => Closed.Instance);
        Become(() =>
        {
            Common();
            Receive<Passed>(p => Record(run, p.Report));
            Receive<RunEnded>(_ => { });
            Receive<StopPartition>(_ =>
            {
                _stopping = true;
                _progress.TryBeginStopping();
            });
            Receive<Closed>(_ =>
            {
                _run = null;
                _runStop?.Dispose();
                _runStop = null;
                if (_stopping)
                {
                    Context.Stop(Self);
                    return;
                }
                _progress.MoveTo(Source.Waiting);
                Become(Starting);
                Timers.StartSingleTimer(Open.Instance, Open.Instance, Source.RetryOpen);
            });
        });
    }

    /// <summary>The receives of every state: status, wake-ups, the pause and its confirmation.</summary>
    private void Common()
    {
        Receive<EnsurePartitionRunning>(_ => { });
        Receive<WakePartition>(_ => Source.Wake());
        Receive<GetPartitionStatus>(_ => Sender.Tell(_progress.Snapshot()));
        Receive<PauseChanged>(p => _progress.SetPaused(p.Paused));
        Receive<ConfirmPause>(c => _pause.ConfirmAsync(c.Paused, Source.Wake, _life.Waits)
            .PipeTo(Sender, success: inForce => new PauseConfirmation(_entityId, c.Paused, inForce, _progress.Node)));
    }

    private void Record(IPartitionRun run, PassReport report) =>
        _progress.Record(report.Delivered, report.DeadLettered, report.Failure, report.SourceError, run.StateAfter(report),
            run.Lag, run.Position, report.Retried);

    private static async Task CloseAfterAsync(Task loop, IPartitionRun run)
    {
        await loop;
        await run.DisposeAsync();
    }

    private sealed record Open
    {
        public static readonly Open Instance = new();
    }

    private sealed record Opened(IPartitionRun? Run, Exception? Error);

    private sealed record Passed(PassReport Report);

    private sealed record RunEnded(bool Lost);

    private sealed record LoopEnded(Exception? Error);

    private sealed record Closed
    {
        public static readonly Closed Instance = new();
    }
}
