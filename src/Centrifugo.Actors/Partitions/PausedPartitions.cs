using System.Collections.Immutable;
using Akka;
using Akka.Actor;
using Akka.Cluster;
using Akka.DistributedData;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The cluster-wide set of paused partition entity ids: an Akka Distributed Data <see cref="ORSet{T}"/> under the key
/// <see cref="KeyName"/>, written with WriteMajority by the admin endpoint and read with ReadMajority by every
/// partition entity before its first batch (so an entity that starts on a node that just joined, after a hand-off or a
/// restart, sees a pause made before). Kept in memory, replicated to every member: a pause survives hand-offs and the
/// restart of any node while another member is up, not a restart of the whole cluster. A member that leaves gracefully
/// pushes its replica to all the others first (<see cref="HandOverOnLeave"/>). Thread-safe.
/// </summary>
internal sealed class PausedPartitions
{
    public const string KeyName = "paused-partitions";

    public static readonly ORSetKey<string> Key = new(KeyName);

    public static readonly TimeSpan ConsistencyTimeout = TimeSpan.FromSeconds(3);

    private readonly Lock _gate = new();
    private ImmutableHashSet<string> _paused = ImmutableHashSet.Create<string>(StringComparer.Ordinal);
    private TaskCompletionSource _changed = NewSignal();

    private IActorRef? _replicator;

    /// <summary>An unbound set: <see cref="SyncAsync"/> fails until <see cref="Bind"/> (the node's runtime exists before
    /// its actor system).</summary>
    public PausedPartitions()
    {
    }

    public PausedPartitions(IActorRef replicator) => _replicator = replicator;

    /// <summary>Binds the node's replicator once the actor system runs; once only.</summary>
    public void Bind(IActorRef replicator)
    {
        if (Interlocked.CompareExchange(ref _replicator, replicator, null) is not null)
        {
            throw new InvalidOperationException("The paused partitions are bound to a replicator already.");
        }
    }

    public bool IsPaused(string entityId) => Volatile.Read(ref _paused).Contains(entityId);

    public IReadOnlySet<string> Snapshot() => Volatile.Read(ref _paused);

    /// <summary>A new replica value (subscription, majority read): wakes every waiting entity to look again.</summary>
    public void Replace(IEnumerable<string> paused)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            Volatile.Write(ref _paused, paused.ToImmutableHashSet(StringComparer.Ordinal));
            changed = _changed;
            _changed = NewSignal();
        }
        changed.TrySetResult();
    }

    /// <summary>Completes at the next <see cref="Replace"/>.</summary>
    public Task ChangedAsync()
    {
        lock (_gate)
        {
            return _changed.Task;
        }
    }

    /// <summary>Reads the set from a majority of the members into this node's replica; false when that failed.</summary>
    public async Task<bool> SyncAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _replicator) is not { } replicator)
        {
            return false;
        }
        try
        {
            var response = await replicator.Ask<IGetResponse>(
                Dsl.Get(Key, new ReadMajority(ConsistencyTimeout)), ConsistencyTimeout + TimeSpan.FromSeconds(1), cancellationToken);
            switch (response)
            {
                case GetSuccess success:
                    Replace(success.Get(Key).Elements);
                    return true;
                case NotFound:
                    return true;
                default:
                    return false;
            }
        }
        catch (AskTimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Adds (pause) or removes (resume) an id with WriteMajority. Null when a majority confirmed it, else why not.
    /// A write that times out while the membership changed (a node left, was removed or joined during it: the replicator
    /// waits for the acknowledgements of the members it started with, a departed one's never comes; seen in
    /// PauseHandOffTests when a resume came 30 ms before a SIGTERMed node's removal) is sent once more to the members as
    /// they are now; a timeout with an unchanged membership (a member unreachable) is reported at once.
    /// </summary>
    public static async Task<string?> UpdateAsync(ActorSystem system, string entityId, bool pause, CancellationToken cancellationToken)
    {
        var replicator = DistributedData.Get(system).Replicator;
        var cluster = Cluster.Get(system);
        var self = cluster.SelfUniqueAddress;
        for (var attempt = 1; ; attempt++)
        {
            var membersBefore = Members(cluster);
            var response = await replicator.Ask<IUpdateResponse>(
                Dsl.Update(Key, ORSet<string>.Empty, new WriteMajority(ConsistencyTimeout),
                    set => pause ? set.Add(self, entityId) : set.Remove(self, entityId)),
                ConsistencyTimeout + TimeSpan.FromSeconds(1), cancellationToken);
            switch (response)
            {
                case UpdateSuccess:
                    return null;
                case UpdateTimeout when attempt == 1 && !Members(cluster).SetEquals(membersBefore):
                    continue;
                case UpdateTimeout:
                    return "applied on this node but not confirmed by a majority of the members in time; it spreads by gossip";
                default:
                    return $"not applied: {response}";
            }
        }

        // Every member with its status: a node that is Exiting counts for the replicator until it is removed.
        static HashSet<(UniqueAddress, MemberStatus)> Members(Cluster cluster) =>
            cluster.State.Members.Select(m => (m.UniqueAddress, m.Status)).ToHashSet();
    }

    /// <summary>
    /// Registers, in CoordinatedShutdown's before-cluster-shutdown phase (before this node hands its partitions off),
    /// a push of this node's replica of the set to every other member (WriteAll). Without it a pause lived only on the
    /// members that saw the majority write or a gossip round since: a node that joined later (within a gossip interval)
    /// and then received the partitions of the leaving node read "not paused" (its majority read had become a local
    /// read once the leaving node was removed) and delivered. Skipped when this node was downed (the others are not
    /// reachable from here); bounded by <see cref="ConsistencyTimeout"/>.
    /// </summary>
    public static void HandOverOnLeave(ActorSystem system)
    {
        var shutdown = CoordinatedShutdown.Get(system);
        shutdown.AddTask(CoordinatedShutdown.PhaseBeforeClusterShutdown, "push-paused-partitions", async () =>
        {
            if (shutdown.ShutdownReason is CoordinatedShutdown.ClusterDowningReason
                || Cluster.Get(system).SelfMember.Status is not (MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting))
            {
                return Done.Instance;
            }
            try
            {
                await DistributedData.Get(system).Replicator.Ask<IUpdateResponse>(
                    Dsl.Update(Key, ORSet<string>.Empty, new WriteAll(ConsistencyTimeout), set => set),
                    ConsistencyTimeout + TimeSpan.FromSeconds(1));
            }
            catch (AskTimeoutException)
            {
                // Best effort within the phase: what a member did not get here it gets by gossip, if this node lives on.
            }
            return Done.Instance;
        });
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Admission of batches into a partition's delivery loop: a batch starts only through <see cref="AdmitAsync"/> or
/// <see cref="TryAdmit"/> and ends with <see cref="Finish"/>, so the gate knows when nothing is in flight.
/// </summary>
internal interface IBatchGate
{
    /// <summary>
    /// Waits while paused; true when a batch is admitted (call <see cref="Finish"/> when it is done), false when the
    /// entity is stopping. <paramref name="beforeWait"/> runs once before waiting paused (to release what the loop holds).
    /// </summary>
    Task<bool> AdmitAsync(Func<Task>? beforeWait, CancellationToken stopToken);

    /// <summary>Admits a batch now unless paused.</summary>
    bool TryAdmit();

    /// <summary>The admitted batch is done (delivered, dead-lettered or abandoned).</summary>
    void Finish();
}

/// <summary>
/// One partition entity's view of the pause. The first admission reads the set from a majority (retried until that
/// succeeds); a paused entity admits nothing until resumed or stopped. The check and the count of admitted batches
/// move together under one lock, so <see cref="ConfirmAsync"/> can tell when a pause is in force: this node's replica
/// says paused and no admitted batch is still running.
/// </summary>
internal sealed class PauseGate(PausedPartitions paused, string entityId) : IBatchGate
{
    private static readonly TimeSpan SyncRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ConfirmRetry = TimeSpan.FromMilliseconds(200);
    private readonly Lock _lock = new();
    private bool _synced;
    private int _inFlight;
    private TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsPaused => paused.IsPaused(entityId);

    public async Task<bool> AdmitAsync(Func<Task>? beforeWait, CancellationToken stopToken)
    {
        try
        {
            while (!_synced)
            {
                _synced = await paused.SyncAsync(stopToken);
                if (!_synced)
                {
                    await Task.Delay(SyncRetry, stopToken);
                }
            }
            if (TryAdmit())
            {
                return true;
            }
            if (beforeWait is not null)
            {
                await beforeWait();
            }
            while (true)
            {
                var changed = paused.ChangedAsync();
                if (TryAdmit())
                {
                    return true;
                }
                await changed.WaitAsync(stopToken);
            }
        }
        catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Waits while paused without admitting a batch (before a read that may wait long for records).</summary>
    public async Task<bool> WaitWhilePausedAsync(CancellationToken stopToken)
    {
        if (!await AdmitAsync(null, stopToken))
        {
            return false;
        }
        Finish();
        return true;
    }

    public bool TryAdmit()
    {
        lock (_lock)
        {
            if (paused.IsPaused(entityId))
            {
                return false;
            }
            if (_inFlight++ == 0)
            {
                _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            return true;
        }
    }

    public void Finish()
    {
        TaskCompletionSource? drained = null;
        lock (_lock)
        {
            if (_inFlight > 0 && --_inFlight == 0)
            {
                drained = _drained;
            }
        }
        drained?.TrySetResult();
    }

    /// <summary>
    /// Completes when the operator's <paramref name="pause"/> (true) or resume (false), already written with
    /// WriteMajority, is in force here: this node's replica agrees (a majority read makes it so at once, rather than
    /// at the next gossip), and for a pause, the batch in flight has finished. <paramref name="wake"/> brings an idle
    /// loop to the gate. False when <paramref name="cancellationToken"/> ends the wait first.
    /// </summary>
    public async Task<bool> ConfirmAsync(bool pause, Action wake, CancellationToken cancellationToken)
    {
        try
        {
            while (paused.IsPaused(entityId) != pause)
            {
                await paused.SyncAsync(cancellationToken);
                if (paused.IsPaused(entityId) != pause)
                {
                    await Task.Delay(ConfirmRetry, cancellationToken);
                }
            }
            wake();
            if (!pause)
            {
                return true;
            }
            while (true)
            {
                Task drained;
                lock (_lock)
                {
                    if (!paused.IsPaused(entityId))
                    {
                        return false; // resumed meanwhile
                    }
                    if (_inFlight == 0)
                    {
                        return true;
                    }
                    drained = _drained.Task;
                }
                await drained.WaitAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}

/// <summary>Watching the pause of one entity: calls back on every change until cancelled (the entity stops).</summary>
internal static class PauseWatch
{
    public static async Task RunAsync(PausedPartitions paused, string entityId, Action<bool> onChange, CancellationToken stopToken)
    {
        var last = false;
        try
        {
            while (!stopToken.IsCancellationRequested)
            {
                var changed = paused.ChangedAsync();
                var now = paused.IsPaused(entityId);
                if (now != last)
                {
                    last = now;
                    onChange(now);
                }
                await changed.WaitAsync(stopToken);
            }
        }
        catch (OperationCanceledException) when (stopToken.IsCancellationRequested)
        {
            // the entity stops
        }
    }
}

/// <summary>Keeps <see cref="PausedPartitions"/> in step with this node's replica (a Distributed Data subscription).</summary>
internal sealed class PausedPartitionsSubscriber : ReceiveActor
{
    public PausedPartitionsSubscriber(PausedPartitions paused)
    {
        Receive<Changed>(c => paused.Replace(c.Get(PausedPartitions.Key).Elements));
    }

    public static Props Props(PausedPartitions paused) => Akka.Actor.Props.Create(() => new PausedPartitionsSubscriber(paused));

    protected override void PreStart() =>
        DistributedData.Get(Context.System).Replicator.Tell(Dsl.Subscribe(PausedPartitions.Key, Self));
}

/// <summary>Told to a partition actor when its id entered (true) or left (false) the paused set.</summary>
internal sealed record PauseChanged(bool Paused);
