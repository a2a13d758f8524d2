using System.Diagnostics;
using System.Globalization;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Streams;
using Akka.Streams.Dsl;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The sharded entity that owns one topic-partition of one kafka consumer. On start it acquires a lease on the node's
/// <see cref="KafkaConsumerHub"/> (manual assignment at the group's committed offset); its work is an Akka.Streams
/// pipeline <c>UnfoldAsync(lease.ReadBatchAsync) → SelectAsync(1, decode + deliver + dead-letter + mark) → actor</c>.
/// On hand-off it stops reading, lets the in-flight batch finish within the drain budget, then disposes the lease
/// (final commit) before it stops, so the next owner starts at the committed offset.
/// Before any of this it obtains a delivery grant from the consumer's group member singleton
/// (<see cref="KafkaGroupMemberActor"/>) and renews it in the background; no batch is delivered without a valid grant,
/// and losing it (expired, revoked by a rebalance, member fenced) stops the entity.
/// </summary>
internal sealed partial class KafkaPartitionActor : ReceiveActor, IWithTimers
{
    private readonly string _entityId;
    private readonly string _topic;
    private readonly int _partition;
    private readonly KafkaConsumerRuntime _runtime;
    private readonly PartitionProgress _progress;
    private readonly ILogger _logger;
    private readonly EntityStop _stop = new();
    private KafkaPartitionLease? _lease;
    private bool _released;
    private bool _passivating;
    private UniqueKillSwitch? _killSwitch;
    private long _epoch;
    private long _grantExpiresAt;
    private bool _leaseRequested;
    private readonly Operations.PauseGate _pause;
    private readonly Operations.PausedPartitions _paused;

    public KafkaPartitionActor(string entityId, string topic, int partition, KafkaConsumerRuntime runtime, PartitionStatusBoard board, string node, ILogger logger, Operations.PausedPartitions paused)
    {
        _entityId = entityId;
        _topic = topic;
        _partition = partition;
        _runtime = runtime;
        _progress = new PartitionProgress(
            entityId, runtime.Consumer, "kafka", string.Create(CultureInfo.InvariantCulture, $"{topic}/{partition}"), node, board);
        _logger = logger;

        Receive<EnsurePartitionRunning>(_ => { });
        Receive<WakePartition>(_ => { });
        Receive<GetPartitionStatus>(_ => Sender.Tell(_progress.Snapshot()));
        Receive<LeaseAcquired>(OnLeaseAcquired);
        Receive<AcquireFailed>(f =>
        {
            if (!_progress.Stopping)
            {
                LogAcquireFailed(_logger, _runtime.Consumer, _topic, _partition, f.Reason);
            }
            Context.Stop(Self);
        });
        Receive<PassReport>(OnReport);
        Receive<StopPartition>(_ => BeginStop());
        Receive<StreamFinished>(f =>
        {
            if (f.Error is { } error && !_progress.Stopping)
            {
                LogStreamFailed(_logger, _runtime.Consumer, _topic, _partition, error);
            }
            Release();
        });
        Receive<LeaseReleased>(_ => Context.Stop(Self));
        Receive<Operations.PauseChanged>(p => _progress.SetPaused(p.Paused));
        _paused = paused;
        _pause = new Operations.PauseGate(paused, entityId);
        Receive<ConfirmPause>(c => _pause.ConfirmAsync(c.Paused, static () => { }, _stop.Waits)
            .PipeTo(Sender, success: inForce => new PauseConfirmation(_entityId, c.Paused, inForce, _progress.Node)));
        Receive<GrantLapsed>(_ =>
        {
            if (!_progress.Stopping)
            {
                KafkaMemberLog.GrantLost(_logger, _runtime.Consumer, _topic, _partition, "expired; the batch was not delivered");
            }
        });
        Receive<GrantAnswer>(OnGrantAnswer);
        Receive<RetryGrant>(_ => RequestGrant());
        Receive<RenewTick>(_ => Renew());
        Receive<RenewAnswer>(OnRenewAnswer);
        Receive<KafkaGrantRevoked>(r =>
        {
            if (r.Epoch == _epoch && !_progress.Stopping)
            {
                KafkaMemberLog.GrantLost(_logger, _runtime.Consumer, _topic, _partition, "revoked by the group member");
                StopForGood();
            }
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string entityId, string topic, int partition, KafkaConsumerRuntime runtime, PartitionStatusBoard board, string node, ILogger logger, Operations.PausedPartitions paused) =>
        Akka.Actor.Props.Create(() => new KafkaPartitionActor(entityId, topic, partition, runtime, board, node, logger, paused));

    protected override void PreStart()
    {
        _progress.MoveTo(PartitionState.Starting);
        var self = Self;
        _ = Operations.PauseWatch.RunAsync(_paused, _entityId, p => self.Tell(new Operations.PauseChanged(p)), _stop.Waits);
        RequestGrant();
    }

    private void RequestGrant()
    {
        if (_progress.Stopping)
        {
            Context.Stop(Self);
            return;
        }
        if (_runtime.Member is not { } member)
        {
            Self.Tell(new AcquireFailed("the kafka group member is not reachable yet"));
            return;
        }
        var self = Self;
        var sentAt = Stopwatch.GetTimestamp();
        member.Ask<KafkaGrantReply>(new AcquireKafkaGrant(_topic, _partition), _runtime.MemberSettings.RenewInterval * 3)
            .ContinueWith(t => self.Tell(new GrantAnswer(t.IsCompletedSuccessfully ? t.Result : null, sentAt)), TaskScheduler.Default);
    }

    private void OnGrantAnswer(GrantAnswer answer)
    {
        if (_progress.Stopping)
        {
            if (answer.Reply is { Status: KafkaGrantStatus.Granted } granted)
            {
                _runtime.Member?.Tell(new ReleaseKafkaGrant(_topic, _partition, granted.Epoch));
            }
            Context.Stop(Self);
            return;
        }
        switch (answer.Reply)
        {
            case { Status: KafkaGrantStatus.Granted } granted:
                _epoch = granted.Epoch;
                _grantExpiresAt = answer.SentAt + Ticks(granted.Ttl);
                Timers.StartPeriodicTimer("renew", RenewTick.Instance, _runtime.MemberSettings.RenewInterval);
                AcquireLease();
                break;
            case { Status: KafkaGrantStatus.NotOwned }:
                LogNotOwned(_logger, _runtime.Consumer, _topic, _partition);
                StopForGood();
                break;
            case { } busy:
                Timers.StartSingleTimer("grant", RetryGrant.Instance, busy.RetryAfter < MinGrantRetry ? MinGrantRetry : busy.RetryAfter);
                break;
            default:
                // No answer within the ask's timeout (the member is moving, or unreachable): that timeout already paced
                // this request, so ask again soon; the new member may be up by now.
                Timers.StartSingleTimer("grant", RetryGrant.Instance, MinGrantRetry);
                break;
        }
    }

    private void Renew()
    {
        if (_lease is { } lease ? !lease.MayDeliver : Stopwatch.GetTimestamp() >= _grantExpiresAt)
        {
            Timers.Cancel("renew");
            _lease?.LapseGrant();
            if (!_progress.Stopping)
            {
                KafkaMemberLog.GrantLost(_logger, _runtime.Consumer, _topic, _partition, "expired before a renewal answered");
                BeginStop();
            }
            return;
        }
        if (_runtime.Member is not { } member)
        {
            return;
        }
        var self = Self;
        var sentAt = Stopwatch.GetTimestamp();
        member.Ask<KafkaGrantReply>(new RenewKafkaGrant(_topic, _partition, _epoch), _runtime.MemberSettings.RenewInterval)
            .ContinueWith(t => self.Tell(new RenewAnswer(t.IsCompletedSuccessfully ? t.Result : null, sentAt)), TaskScheduler.Default);
    }

    private void OnRenewAnswer(RenewAnswer answer)
    {
        switch (answer.Reply?.Status)
        {
            case KafkaGrantStatus.Granted:
                var expires = answer.SentAt + Ticks(answer.Reply.Ttl);
                if (_lease is { } lease)
                {
                    lease.ExtendGrant(expires);
                }
                else if (Stopwatch.GetTimestamp() < _grantExpiresAt)
                {
                    _grantExpiresAt = Math.Max(_grantExpiresAt, expires);
                }
                break;
            case KafkaGrantStatus.Lost or KafkaGrantStatus.NotOwned:
                Timers.Cancel("renew");
                _lease?.LapseGrant();
                _grantExpiresAt = 0;
                if (!_progress.Stopping)
                {
                    KafkaMemberLog.GrantLost(_logger, _runtime.Consumer, _topic, _partition, "the group member no longer knows it");
                    StopForGood();
                }
                break;
        }
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private static readonly TimeSpan MinGrantRetry = TimeSpan.FromMilliseconds(200);

    private void AcquireLease()
    {
        _leaseRequested = true;
        var self = Self;
        _runtime.Hub.AcquireAsync(_topic, _partition, _stop.Waits).ContinueWith(
            t => self.Tell(t.IsCompletedSuccessfully
                ? new LeaseAcquired(t.Result)
                : new AcquireFailed(t.Exception?.GetBaseException().Message ?? "cancelled")),
            TaskScheduler.Default);
    }

    protected override void PostStop()
    {
        _killSwitch?.Shutdown();
        _stop.Abort();
        if (_lease is { } lease && !_released)
        {
            // Stopped without a hand-off (actor system terminating): the hub still commits the last mark.
            _ = lease.DisposeAsync().AsTask();
        }
        _stop.Dispose();
        _progress.Remove();
        if (_epoch != 0)
        {
            // After the final commit (normal path): the next owner may start at once.
            _runtime.Member?.Tell(new ReleaseKafkaGrant(_topic, _partition, _epoch));
        }
    }

    private void OnLeaseAcquired(LeaseAcquired acquired)
    {
        _lease = acquired.Lease;
        acquired.Lease.SetGrant(_epoch, _grantExpiresAt);
        if (_progress.Stopping || !acquired.Lease.MayDeliver)
        {
            Release();
            return;
        }

        var self = Self;
        var lease = acquired.Lease;
        var processor = _runtime.Processor;
        var maxRecords = Math.Max(1, _runtime.Options.MaxPollRecords);
        var stopToken = _stop.Waits;
        var token = _stop.Work;
        var pause = _pause;

        var (killSwitch, completion) = Source
            .UnfoldAsync(0, async _ =>
            {
                try
                {
                    // Stopping: no new batch (the one before may have been left unfinished).
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
                    // processed. Dropped (not delivered, nothing marked) when the entity stops there.
                    // Empty only when the lease closed (hub stopping).
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
                    // here, or the next batch's marks would commit past them (they are the next owner's to deliver).
                    return await processor.ProcessAsync(lease, batch, r => self.Tell(r), stopToken, token);
                }
                catch (KafkaGrantLapsedException)
                {
                    // Not a failure of the stream: the fence did its job; the entity stops.
                    self.Tell(GrantLapsed.Instance);
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
            .ToMaterialized(Sink.Ignore<bool>(), Keep.Both)
            .Run(Context.Materializer());
        _killSwitch = killSwitch;
        completion.ContinueWith(
            t => self.Tell(new StreamFinished(t.IsFaulted ? t.Exception?.GetBaseException() : null)),
            TaskScheduler.Default);

        _progress.MoveTo(PartitionState.Idle);
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

    /// <summary>
    /// This deployment no longer owns the partition: stop through the shard (passivation), so the region forgets the
    /// entity instead of restarting it (it remembers its entities). The shard answers with <see cref="StopPartition"/>,
    /// which runs the ordinary stop (final commit); the keeper starts the entity again if the partition comes back.
    /// </summary>
    private void StopForGood()
    {
        if (!_passivating)
        {
            _passivating = true;
            Context.Parent.Tell(new Passivate(StopPartition.Instance));
        }
    }

    private void BeginStop()
    {
        if (!_progress.TryBeginStopping())
        {
            return;
        }
        // Ends the read wait, a backoff wait and a pending acquisition now; the in-flight attempt gets the drain
        // budget. Whatever is not marked by then is re-read by the next owner from the committed offset.
        _stop.Begin(_runtime.DrainTimeout);
        if (_lease is not null && _killSwitch is null)
        {
            Release();
        }
        else if (!_leaseRequested)
        {
            // Still waiting for a grant: nothing to hand over.
            Context.Stop(Self);
        }
    }

    /// <summary>Disposes the lease (final commit of the last mark) and stops once that is done.</summary>
    private void Release()
    {
        if (_released)
        {
            return;
        }
        _released = true;
        if (_lease is not { } lease)
        {
            Context.Stop(Self);
            return;
        }
        var self = Self;
        lease.DisposeAsync().AsTask().ContinueWith(_ => self.Tell(LeaseReleased.Instance), TaskScheduler.Default);
    }

    [LoggerMessage(4040, LogLevel.Warning,
        "Kafka consumer {Consumer} could not acquire {Topic}/{Partition}, retried by the keeper: {Reason}")]
    private static partial void LogAcquireFailed(ILogger logger, string consumer, string topic, int partition, string reason);

    [LoggerMessage(4041, LogLevel.Error,
        "Kafka consumer {Consumer}: processing of {Topic}/{Partition} failed; releasing it (the keeper restarts it)")]
    private static partial void LogStreamFailed(ILogger logger, string consumer, string topic, int partition, Exception exception);

    [LoggerMessage(4062, LogLevel.Debug,
        "Kafka consumer {Consumer}: {Topic}/{Partition} is not assigned to this deployment by the consumer group; not running it")]
    private static partial void LogNotOwned(ILogger logger, string consumer, string topic, int partition);

    private sealed record LeaseAcquired(KafkaPartitionLease Lease);

    private sealed record GrantAnswer(KafkaGrantReply? Reply, long SentAt);

    private sealed record RenewAnswer(KafkaGrantReply? Reply, long SentAt);

    private sealed record RetryGrant
    {
        public static readonly RetryGrant Instance = new();
    }

    private sealed record GrantLapsed
    {
        public static readonly GrantLapsed Instance = new();
    }

    private sealed record RenewTick
    {
        public static readonly RenewTick Instance = new();
    }

    private sealed record AcquireFailed(string Reason);

    private sealed record StreamFinished(Exception? Error);

    private sealed record LeaseReleased
    {
        public static readonly LeaseReleased Instance = new();
    }
}
