using System.Globalization;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The sharded entity of one topic-partition of one kafka consumer. It runs where the consumer group assigned the
/// partition (placed there by <see cref="KafkaPlacement"/>); anywhere else it stands by. States:
/// <list type="bullet">
/// <item>Standby: no lease. Asks the node's <see cref="KafkaConsumerHub"/> for one every
/// <see cref="KafkaSettings.AttachRetry"/> (the partition is not assigned here, or the previous lease is closing).</item>
/// <item>Running: an Akka.Streams pipeline <c>UnfoldAsync(lease.ReadBatchAsync) → SelectAsync(1, process)</c>.
/// When the group revokes the partition the lease stops reading, the in-flight batch gets the drain budget, the final
/// offset is committed and the entity stands by again; lost, it stops at once and commits nothing.</item>
/// <item>Stopping (hand-off or shutdown, <see cref="StopPartition"/>): the same drain, then the actor stops.</item>
/// </list>
/// </summary>
internal sealed partial class KafkaPartitionActor : ReceiveActor, IWithTimers
{
    private readonly string _entityId;
    private readonly string _topic;
    private readonly int _partition;
    private readonly KafkaConsumerRuntime _runtime;
    private readonly PartitionProgress _progress;
    private readonly ILogger _logger;
    private readonly EntityStop _life = new();
    private readonly Operations.PauseGate _pause;
    private readonly Operations.PausedPartitions _paused;
    private EntityStop? _run;
    private KafkaPartitionLease? _lease;
    private UniqueKillSwitch? _killSwitch;
    private bool _stopping;

    public KafkaPartitionActor(string entityId, string topic, int partition, KafkaConsumerRuntime runtime, PartitionStatusBoard board, string node, ILogger logger, Operations.PausedPartitions paused)
    {
        _entityId = entityId;
        _topic = topic;
        _partition = partition;
        _runtime = runtime;
        _progress = new PartitionProgress(
            entityId, runtime.Consumer, PartitionSource.Kafka, string.Create(CultureInfo.InvariantCulture, $"{topic}/{partition}"), node, board);
        _logger = logger;
        _paused = paused;
        _pause = new Operations.PauseGate(paused, entityId);
        Standby();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string entityId, string topic, int partition, KafkaConsumerRuntime runtime, PartitionStatusBoard board, string node, ILogger logger, Operations.PausedPartitions paused) =>
        Akka.Actor.Props.Create(() => new KafkaPartitionActor(entityId, topic, partition, runtime, board, node, logger, paused));

    protected override void PreStart()
    {
        var self = Self;
        _ = Operations.PauseWatch.RunAsync(_paused, _entityId, p => self.Tell(new Operations.PauseChanged(p)), _life.Waits);
        Self.Tell(TryAttach.Instance);
    }

    protected override void PostStop()
    {
        _killSwitch?.Shutdown();
        _run?.Abort();
        _life.Abort();
        if (_lease is { } lease)
        {
            // Stopped without a hand-off (actor system terminating): the lease still commits its last mark.
            _ = lease.DisposeAsync().AsTask();
        }
        _run?.Dispose();
        _life.Dispose();
        _progress.Remove();
    }

    private void Standby()
    {
        _progress.MoveTo(PartitionState.Standby);
        Common();
        Receive<TryAttach>(_ => Attach());

        Receive<Attached>(a =>
        {
            if (a.Lease is { } lease)
            {
                Run(lease);
                return;
            }
            if (a.Error is { } error)
            {
                LogAttachFailed(_logger, _runtime.Consumer, _topic, _partition, error);
            }
            Timers.StartSingleTimer(TryAttach.Instance, TryAttach.Instance, _runtime.Hub.Settings.AttachRetry);
        });
        Receive<StopPartition>(_ => Context.Stop(Self));
    }

    private void Attach()
    {
        var self = Self;
        var life = _life.Waits;
        _runtime.Hub.AttachAsync(_topic, _partition, life).ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully && t.Result is { } late && life.IsCancellationRequested)
            {
                // The entity stopped while the lease was being set up: give it back, or nobody could attach again.
                _ = late.DisposeAsync().AsTask();
                return;
            }
            self.Tell(new Attached(t.IsCompletedSuccessfully ? t.Result : null, t.Exception?.GetBaseException().Message));
        }, TaskScheduler.Default);
    }

    private void Run(KafkaPartitionLease lease)
    {
        _lease = lease;
        _run = new EntityStop();
        var self = Self;
        lease.OnEnded(() => self.Tell(LeaseEnded.Instance));
        var (killSwitch, completion) = Pipeline(lease, _run).Run(Context.Materializer());
        _killSwitch = killSwitch;
        completion.ContinueWith(
            t => self.Tell(new StreamFinished(t.IsFaulted ? t.Exception?.GetBaseException() : null)),
            TaskScheduler.Default);
        _progress.MoveTo(PartitionState.Idle);

        Become(() =>
        {
            Common();
            Receive<PassReport>(OnReport);
            Receive<LeaseEnded>(_ =>
            {
                if (lease.IsLost)
                {
                    LogLost(_logger, _runtime.Consumer, _topic, _partition);
                    _run.Abort();
                }
                else
                {
                    // Revoked: the in-flight batch may finish within the drain budget; nothing new is read.
                    _run.Begin(_runtime.DrainTimeout);
                }
            });
            Receive<StopPartition>(_ =>
            {
                _stopping = true;
                _progress.TryBeginStopping();
                _run.Begin(_runtime.DrainTimeout);
            });
            Receive<StreamFinished>(f =>
            {
                if (f.Error is { } error && !_stopping && !lease.IsEnding)
                {
                    LogStreamFailed(_logger, _runtime.Consumer, _topic, _partition, error);
                }
                // The final commit of the last mark (nothing when lost), then stand by or stop.
                lease.DisposeAsync().AsTask().ContinueWith(_ => self.Tell(LeaseReleased.Instance), TaskScheduler.Default);
            });
            Receive<LeaseReleased>(_ =>
            {
                _lease = null;
                _killSwitch = null;
                _run.Dispose();
                _run = null;
                if (_stopping)
                {
                    Context.Stop(Self);
                    return;
                }
                Become(Standby);
                Timers.StartSingleTimer(TryAttach.Instance, TryAttach.Instance, _runtime.Hub.Settings.AttachRetry);
            });
        });
    }

    /// <summary>The receives of every state: status, pause and its confirmation.</summary>
    private void Common()
    {
        Receive<EnsurePartitionRunning>(_ => { });
        Receive<WakePartition>(_ => { });
        Receive<GetPartitionStatus>(_ => Sender.Tell(_progress.Snapshot()));
        Receive<Operations.PauseChanged>(p => _progress.SetPaused(p.Paused));
        Receive<ConfirmPause>(c => _pause.ConfirmAsync(c.Paused, static () => { }, _life.Waits)
            .PipeTo(Sender, success: inForce => new PauseConfirmation(_entityId, c.Paused, inForce, _progress.Node)));
    }

    private IRunnableGraph<(UniqueKillSwitch, Task<Akka.Done>)> Pipeline(KafkaPartitionLease lease, EntityStop run)
    {
        var self = Self;
        var processor = _runtime.Processor;
        var maxRecords = Math.Max(1, _runtime.Options.MaxPollRecords);
        var stopToken = run.Waits;
        var token = run.Work;
        var pause = _pause;
        return Source
            .UnfoldAsync(0, async _ =>
            {
                try
                {
                    // Stopping or revoked: no new batch (the one before may have been left unfinished).
                    if (stopToken.IsCancellationRequested)
                    {
                        return Akka.Util.Option<(int, KafkaRecordBatch)>.None;
                    }
                    // Paused (operator): no new batch; nothing is marked, so the committed offset stays.
                    if (!await pause.WaitWhilePausedAsync(stopToken))
                    {
                        return Akka.Util.Option<(int, KafkaRecordBatch)>.None;
                    }
                    var batch = await lease.ReadBatchAsync(maxRecords, stopToken);
                    // Paused while the read waited: the batch waits at the gate; admitted, it counts as in flight until
                    // processed. Empty only when the lease ended.
                    if (batch.Count == 0 || !await PassOrDropAsync(pause, batch, stopToken))
                    {
                        batch.Dispose();
                        return Akka.Util.Option<(int, KafkaRecordBatch)>.None;
                    }
                    return Akka.Util.Option<(int, KafkaRecordBatch)>.Create((0, batch));
                }
                catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
                {
                    return Akka.Util.Option<(int, KafkaRecordBatch)>.None;
                }
            })
            .SelectAsync(1, async batch =>
            {
                try
                {
                    // False: the stop ended a retry and left records of this batch unfinished; the stream must end
                    // here, or the next batch's marks would commit past them.
                    return await processor.ProcessAsync(lease, batch, r => self.Tell(r), stopToken, token);
                }
                catch (KafkaPartitionLostException)
                {
                    return false;
                }
                finally
                {
                    // The batch's one owner: its buffers go back to the pool once nothing is processing it.
                    batch.Dispose();
                    pause.Finish();
                }
            })
            .TakeWhile(delivered => delivered)
            .ViaMaterialized(KillSwitches.Single<bool>(), Keep.Right)
            .ToMaterialized(Sink.Ignore<bool>(), Keep.Both);
    }

    /// <summary>The pause gate after a read; disposes the batch itself only when the wait throws.</summary>
    private static async Task<bool> PassOrDropAsync(Operations.PauseGate pause, KafkaRecordBatch batch, CancellationToken stop)
    {
        try
        {
            return await pause.AdmitAsync(null, stop);
        }
        catch
        {
            batch.Dispose();
            throw;
        }
    }

    private void OnReport(PassReport report) =>
        _progress.Record(report.Delivered, report.DeadLettered, report.Failure, null,
            _lease is { QueuedCount: > 0 } ? PartitionState.Delivering : PartitionState.Idle,
            _lease is { IsClosed: false } lease ? lease.Lag : null,
            _lease is { IsClosed: false } open ? (open.MarkedOffset + 1) ?? open.CommittedOffset : null);

    [LoggerMessage(4040, LogLevel.Warning, "Kafka consumer {Consumer} could not attach {Topic}/{Partition}, retrying: {Reason}")]
    private static partial void LogAttachFailed(ILogger logger, string consumer, string topic, int partition, string reason);

    [LoggerMessage(4041, LogLevel.Error,
        "Kafka consumer {Consumer}: processing of {Topic}/{Partition} failed; releasing it (it is read again from its last mark)")]
    private static partial void LogStreamFailed(ILogger logger, string consumer, string topic, int partition, Exception exception);

    [LoggerMessage(4042, LogLevel.Warning,
        "Kafka consumer {Consumer}: {Topic}/{Partition} was lost by this group member; delivery stopped at once, nothing more is committed")]
    private static partial void LogLost(ILogger logger, string consumer, string topic, int partition);

    private sealed record TryAttach
    {
        public static readonly TryAttach Instance = new();
    }

    private sealed record Attached(KafkaPartitionLease? Lease, string? Error);

    private sealed record LeaseEnded
    {
        public static readonly LeaseEnded Instance = new();
    }

    private sealed record StreamFinished(Exception? Error);

    private sealed record LeaseReleased
    {
        public static readonly LeaseReleased Instance = new();
    }
}
