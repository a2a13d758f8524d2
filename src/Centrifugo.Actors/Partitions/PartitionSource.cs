namespace Centrifugo.Actors.Partitions;

/// <summary>
/// One partition of a source as <see cref="PartitionEntity"/> sees it: it opens a <see cref="IPartitionRun"/> (the right
/// to read the partition on this node) when it can. Created by the entity when it starts, disposed when it stops;
/// called from the entity's thread only.
/// </summary>
internal interface IPartitionSource : IDisposable
{
    /// <summary>The state shown while the entity has no run (outbox: starting; Kafka: standby, assigned elsewhere).</summary>
    PartitionState Waiting { get; }

    /// <summary>How long the entity waits before it tries <see cref="OpenAsync"/> again after a null.</summary>
    TimeSpan RetryOpen { get; }

    /// <summary>How long the batch in flight may finish after a stop or a revocation before it is cancelled.</summary>
    TimeSpan DrainTimeout { get; }

    /// <summary>A hint that new items may be waiting (<see cref="WakePartition"/>, a pause or resume).</summary>
    void Wake();

    /// <summary>
    /// A run, or null when the partition cannot be read here now (Kafka: the group assigned it to another member, or
    /// the previous run is closing). When <paramref name="cancellationToken"/> fired before the run opened, the source
    /// closes it itself and returns null.
    /// </summary>
    Task<IPartitionRun?> OpenAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Reading one partition, one batch at a time, for as long as the entity and the source allow (<see cref="PartitionLoop"/>
/// drives it). Disposing it settles what it holds (Kafka: the final commit; outbox: a delivered batch's DELETE + COMMIT,
/// a read-ahead batch rolled back); the loop has ended by then.
/// </summary>
internal interface IPartitionRun : IAsyncDisposable
{
    /// <summary>
    /// Registers the call made once when the source takes the partition away: revoked (false: the batch in flight may
    /// finish) or lost (true: deliver nothing more). The outbox never does; its lock fences a stale owner.
    /// </summary>
    void OnEnded(Action<bool> ended);

    /// <summary>
    /// Waits until a batch may be ready (outbox: the next turn; Kafka: records read and held). False when there will be
    /// none: <paramref name="stop"/> fired or the source ended the run. Reports passes that happen while waiting (an
    /// outbox batch completed alone) to <paramref name="report"/>.
    /// </summary>
    Task<bool> WaitForWorkAsync(Action<PassReport> report, CancellationToken stop);

    /// <summary>Before the loop waits paused: releases what must not be held while paused (an outbox transaction).</summary>
    Task ReleaseAsync(Action<PassReport> report);

    /// <summary>
    /// One pass: read (or take what <see cref="WaitForWorkAsync"/> holds), deliver, settle the finished prefix. Throws
    /// <see cref="OperationCanceledException"/> when <paramref name="work"/> fired mid-attempt.
    /// </summary>
    Task<PassReport> PassAsync(CancellationToken stop, CancellationToken work);

    /// <summary>
    /// The state from the moment the run opened until its first pass (outbox: starting, its first read tells; Kafka:
    /// idle, the lease reads only when records arrive).
    /// </summary>
    PartitionState Opened { get; }

    /// <summary>The state after a pass that did not fail: idle, or delivering when more is known to be waiting.</summary>
    PartitionState StateAfter(PassReport report);

    /// <summary>Items known to be waiting in the source; null when the source cannot tell.</summary>
    long? Lag { get; }

    /// <summary>The position the next read starts from, where the source has one (Kafka: the next offset).</summary>
    long? Position { get; }
}
