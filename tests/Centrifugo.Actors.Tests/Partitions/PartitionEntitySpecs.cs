using Akka.Actor;
using Akka.DistributedData;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Partitions;

/// <summary>
/// The partition entity's states against sources standing in for the two kinds: one that opens at once (the outbox)
/// and one that stands by until the group assigns the partition and later revokes or loses it (Kafka).
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PartitionEntitySpecs(ITestOutputHelper output) : Akka.TestKit.Xunit2.TestKit(ActorSpecs.Config, output)
{
    private const string Id = "pg:c:0";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task An_outbox_like_partition_runs_at_once_and_a_stop_lets_the_pass_in_flight_finish_before_it_settles()
    {
        var run = new FakeRun();
        var source = new FakeSource(PartitionState.Starting, run);
        var (entity, board) = Start(source);
        await UntilAsync(board, PartitionState.Idle);

        run.WorkArrives();
        await run.PassStarted.WaitAsync(Wait);
        Watch(entity);
        entity.Tell(StopPartition.Instance);
        await UntilAsync(board, PartitionState.Stopping);
        Assert.False(run.Disposed.Task.IsCompleted); // the pass in flight has its drain budget

        run.FinishPass(new PassReport(3, 3, 0, null));
        ExpectTerminated(entity, Wait);
        await run.Disposed.Task.WaitAsync(Wait);
        Assert.False(run.PassCancelled);
        Assert.True(source.Disposed);
    }

    [Fact]
    public async Task A_pass_past_the_drain_budget_is_cancelled_and_the_run_still_settles()
    {
        var run = new FakeRun();
        var (entity, _) = Start(new FakeSource(PartitionState.Starting, run) { DrainTimeout = TimeSpan.FromMilliseconds(200) });
        run.WorkArrives();
        await run.PassStarted.WaitAsync(Wait);
        Watch(entity);

        entity.Tell(StopPartition.Instance);
        ExpectTerminated(entity, Wait);
        Assert.True(run.PassCancelled);
        await run.Disposed.Task.WaitAsync(Wait);
    }

    [Fact]
    public async Task A_kafka_like_partition_stands_by_until_it_opens_and_a_revocation_drains_and_stands_by_again()
    {
        var first = new FakeRun();
        var second = new FakeRun();
        var source = new FakeSource(PartitionState.Standby, null, null, first, second) { RetryOpen = TimeSpan.FromMilliseconds(100) };
        var (entity, board) = Start(source);
        await UntilAsync(board, PartitionState.Idle); // after two "not here" answers
        Assert.True(source.Opens >= 3);

        first.WorkArrives();
        await first.PassStarted.WaitAsync(Wait);
        first.End(lost: false);
        await Task.Delay(100); // the revocation is handled while the pass is in flight (nothing to wait on)
        Assert.False(first.Disposed.Task.IsCompleted);
        first.FinishPass(new PassReport(2, 2, 0, null));
        await first.Disposed.Task.WaitAsync(Wait);
        Assert.False(first.PassCancelled);

        // Standing by, then the group assigns it here again.
        await UntilAsync(board, PartitionState.Idle);
        second.WorkArrives();
        await second.PassStarted.WaitAsync(Wait);
        second.FinishPass(new PassReport(1, 1, 0, null));
        await AwaitConditionAsync(() => Task.FromResult(board.Snapshot().Single().Delivered == 3), Wait);
        Assert.Equal(1, second.Passes);
        Assert.True(entity.Path.Name.Length > 0);
    }

    [Fact]
    public async Task A_lost_partition_cancels_the_pass_in_flight_at_once()
    {
        var run = new FakeRun();
        var (_, board) = Start(new FakeSource(PartitionState.Standby, run) { RetryOpen = TimeSpan.FromMinutes(1) });
        await UntilAsync(board, PartitionState.Idle);
        run.WorkArrives();
        await run.PassStarted.WaitAsync(Wait);

        run.End(lost: true);
        await run.Disposed.Task.WaitAsync(Wait);
        Assert.True(run.PassCancelled);
        await UntilAsync(board, PartitionState.Standby);
    }

    [Fact]
    public async Task A_standing_by_partition_stops_at_once()
    {
        var source = new FakeSource(PartitionState.Standby) { RetryOpen = TimeSpan.FromMinutes(1) };
        var (entity, board) = Start(source);
        await UntilAsync(board, PartitionState.Standby);
        Watch(entity);
        entity.Tell(StopPartition.Instance);
        ExpectTerminated(entity, Wait);
        Assert.True(source.Disposed);
    }

    [Fact]
    public async Task A_pause_is_in_force_once_the_pass_in_flight_finished_and_nothing_new_starts_until_resumed()
    {
        var run = new FakeRun();
        var paused = Paused();
        var (entity, board) = Start(new FakeSource(PartitionState.Starting, run), paused);
        run.WorkArrives();
        await run.PassStarted.WaitAsync(Wait);

        paused.Replace([Id]);
        await UntilAsync(board, PartitionState.Paused);
        var confirmation = entity.Ask<PauseConfirmation>(new ConfirmPause(Id, true), Wait);
        await Task.Delay(200);
        Assert.False(confirmation.IsCompleted); // a batch is still in flight

        run.FinishPass(new PassReport(1, 1, 0, null));
        Assert.True((await confirmation).InForce);
        run.WorkArrives();
        await Task.Delay(300);
        Assert.Equal(1, run.Passes); // paused: no new pass

        paused.Replace([]);
        await run.NextPassStarted(2).WaitAsync(Wait);
    }

    [Fact]
    public async Task A_partition_that_keeps_failing_is_paused_between_two_attempts()
    {
        var run = new FakeRun { Failing = true };
        var paused = Paused();
        var (entity, board) = Start(new FakeSource(PartitionState.Starting, run), paused);
        run.WorkArrives();
        await run.NextPassStarted(3).WaitAsync(Wait); // retrying the held batch with backoff

        paused.Replace([Id]);
        var confirmation = await entity.Ask<PauseConfirmation>(new ConfirmPause(Id, true), Wait);
        Assert.True(confirmation.InForce);
        var attempts = run.Passes;
        await Task.Delay(500); // several backoff periods
        Assert.Equal(attempts, run.Passes);
        await UntilAsync(board, PartitionState.Paused);

        paused.Replace([]);
        await run.NextPassStarted(attempts + 1).WaitAsync(Wait);
    }

    [Fact]
    public async Task A_loop_that_fails_unexpectedly_settles_its_run_and_opens_again()
    {
        var broken = new FakeRun { Throw = true };
        var next = new FakeRun();
        var source = new FakeSource(PartitionState.Starting, broken, next);
        var (_, board) = Start(source);
        broken.WorkArrives();
        await broken.Disposed.Task.WaitAsync(Wait);
        // Still Idle from the broken run until the entity has handled its close: wait for the second open first.
        await AwaitConditionAsync(() => Task.FromResult(source.Opens == 2), Wait);
        await UntilAsync(board, PartitionState.Idle);
        Assert.Equal(2, source.Opens);
    }

    private (IActorRef Entity, PartitionStatusBoard Board) Start(FakeSource source, PausedPartitions? paused = null)
    {
        var board = new PartitionStatusBoard();
        var progress = new PartitionProgress(Id, "c", PartitionSource.Postgresql, "0", "node", board);
        var entity = Sys.ActorOf(PartitionEntity.Props(Id, () => source, progress, paused ?? Paused(), NullLogger.Instance));
        return (entity, board);
    }

    /// <summary>A paused set whose majority reads answer "nothing stored" (changes are made with Replace).</summary>
    private PausedPartitions Paused() => new(Sys.ActorOf(Props.Create(() => new EmptyReplicator())));

    private async Task UntilAsync(PartitionStatusBoard board, PartitionState state) =>
        await AwaitConditionAsync(() => Task.FromResult(board.Snapshot().SingleOrDefault()?.State == state), Wait);

    private sealed class EmptyReplicator : ReceiveActor
    {
        public EmptyReplicator() => Receive<Get>(g => Sender.Tell(new NotFound(g.Key, g.Request)));
    }

    private sealed class FakeSource(PartitionState waiting, params FakeRun?[] opens) : IPartitionSource
    {
        private int _next;

        public PartitionState Waiting => waiting;

        public TimeSpan RetryOpen { get; init; } = TimeSpan.FromMilliseconds(50);

        public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

        public int Opens => Volatile.Read(ref _next);

        public bool Disposed { get; private set; }

        public void Wake()
        {
        }

        public Task<IPartitionRun?> OpenAsync(CancellationToken cancellationToken)
        {
            var i = Interlocked.Increment(ref _next) - 1;
            return Task.FromResult<IPartitionRun?>(i < opens.Length ? opens[i] : null);
        }

        public void Dispose() => Disposed = true;
    }

    /// <summary>A run the test drives: work arrives when told, each pass lasts until finished or cancelled.</summary>
    private sealed class FakeRun : IPartitionRun
    {
        private readonly SemaphoreSlim _work = new(0);
        private readonly Lock _gate = new();
        private readonly List<TaskCompletionSource> _started = [];
        private TaskCompletionSource<PassReport> _pass = New<PassReport>();
        private Action<bool>? _ended;
        private volatile bool _over;

        public bool Throw { get; init; }

        /// <summary>Every pass fails without progress and the batch stays held (a poison-free outage).</summary>
        public bool Failing { get; init; }

        public int Passes { get; private set; }

        public bool PassCancelled { get; private set; }

        public TaskCompletionSource Disposed { get; } = New();

        public Task PassStarted => NextPassStarted(1);

        public Task NextPassStarted(int pass)
        {
            lock (_gate)
            {
                while (_started.Count < pass)
                {
                    _started.Add(New());
                }
                return _started[pass - 1].Task;
            }
        }

        public void WorkArrives() => _work.Release();

        public void FinishPass(PassReport report) => _pass.TrySetResult(report);

        public void End(bool lost)
        {
            _over = true;
            _work.Release();
            _ended?.Invoke(lost);
        }

        public PartitionState Opened => PartitionState.Idle;

        public long? Lag => null;

        public long? Position => null;

        public void OnEnded(Action<bool> ended) => _ended = ended;

        public async Task<bool> WaitForWorkAsync(Action<PassReport> report, CancellationToken stop)
        {
            if (Failing && Passes > 0)
            {
                return !stop.IsCancellationRequested; // the failed batch is still held
            }
            try
            {
                await _work.WaitAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            return !_over;
        }

        public Task ReleaseAsync(Action<PassReport> report) => Task.CompletedTask;

        public async Task<PassReport> PassAsync(CancellationToken stop, CancellationToken work)
        {
            if (Throw)
            {
                throw new InvalidOperationException("a bug");
            }
            if (Failing)
            {
                Passes++;
                lock (_gate)
                {
                    _ = NextPassStarted(Passes);
                    _started[Passes - 1].TrySetResult();
                }
                return new PassReport(5, 0, 0, new DeliveryFailure(FailureKind.Temporary, "centrifugo error 100"));
            }
            Passes++;
            _pass = New<PassReport>();
            _ = NextPassStarted(Passes);
            lock (_gate)
            {
                _started[Passes - 1].TrySetResult();
            }
            try
            {
                return await _pass.Task.WaitAsync(work);
            }
            catch (OperationCanceledException)
            {
                PassCancelled = true;
                throw;
            }
        }

        public PartitionState StateAfter(PassReport report) => PartitionState.Idle;

        public ValueTask DisposeAsync()
        {
            Disposed.TrySetResult();
            return ValueTask.CompletedTask;
        }

        private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

        private static TaskCompletionSource<T> New<T>() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
