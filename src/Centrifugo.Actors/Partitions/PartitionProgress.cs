using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The bookkeeping every partition entity does the same way, whatever its source: counters, state transitions,
/// Centrifugo's and our metrics, and the entry on the node's <see cref="PartitionStatusBoard"/>. Owned by one actor
/// (not thread-safe).
/// </summary>
internal sealed class PartitionProgress(
    string entityId, string consumer, PartitionSource source, string partition, string node, PartitionStatusBoard board)
{
    private long _delivered;
    private long _deadLettered;
    private long _errors;
    private string? _lastError;
    private DateTimeOffset? _lastErrorAt;
    private DateTimeOffset? _lastActivityAt;
    private long? _lag;
    private long? _position;

    public PartitionState State { get; private set; } = PartitionState.Starting;

    /// <summary>The node this entity runs on.</summary>
    public string Node => node;

    public bool Stopping => State == PartitionState.Stopping;

    /// <summary>Waiting paused (operator): shown as <see cref="PartitionState.Paused"/> unless stopping.</summary>
    public void SetPaused(bool paused)
    {
        _paused = paused;
        board.Update(Snapshot());
    }

    private bool _paused;

    /// <summary>
    /// One pass: what was finished, and the failure that ended it (a delivery failure or another error such as a
    /// database error). <paramref name="okState"/> is the state when the pass did not fail (Idle or Delivering).
    /// </summary>
    /// <param name="retried">Failed attempts the pass got past (counted as errors, not shown as the last error).</param>
    public void Record(int delivered, int deadLettered, DeliveryFailure? failure, string? otherError, PartitionState okState,
        long? lag = null, long? position = null, int retried = 0)
    {
        if (retried > 0)
        {
            _errors += retried;
            ConsumerMetrics.Errors.WithLabels(consumer).Inc(retried);
        }

        var done = delivered + deadLettered;
        if (done > 0)
        {
            _delivered += delivered;
            _deadLettered += deadLettered;
            _lastActivityAt = DateTimeOffset.UtcNow;
            ConsumerMetrics.MessagesProcessed.WithLabels(consumer).Inc(done);
            if (deadLettered > 0)
            {
                ConsumerMetrics.DeadLettered.WithLabels(consumer).Inc(deadLettered);
            }
        }

        var error = failure?.Message ?? otherError;
        if (error is not null)
        {
            _errors++;
            _lastError = error;
            _lastErrorAt = DateTimeOffset.UtcNow;
            ConsumerMetrics.Errors.WithLabels(consumer).Inc();
        }

        _lag = lag;
        _position = position;
        MoveTo(failure?.Kind == FailureKind.Configuration ? PartitionState.Stalled
            : error is not null ? PartitionState.Retrying
            : okState);
    }

    /// <summary><see cref="Record(int, int, DeliveryFailure?, string?, PartitionState, long?, long?, int)"/> of one
    /// <see cref="PassReport"/>.</summary>
    public void Record(PassReport report, PartitionState okState, long? lag = null) =>
        Record(report.Delivered, report.DeadLettered, report.Failure, report.SourceError, okState, lag, retried: report.Retried);

    /// <summary>Moves to <paramref name="state"/> (never out of Stopping) and publishes the status.</summary>
    public void MoveTo(PartitionState state)
    {
        if (State == PartitionState.Stopping)
        {
            board.Update(Snapshot());
            return;
        }
        if (state == PartitionState.Stalled && State != PartitionState.Stalled)
        {
            ConsumerMetrics.StalledPartitions.WithLabels(consumer).Inc();
        }
        else if (state != PartitionState.Stalled && State == PartitionState.Stalled)
        {
            ConsumerMetrics.StalledPartitions.WithLabels(consumer).Dec();
        }
        State = state;
        board.Update(Snapshot());
    }

    /// <summary>Moves to Stopping; false when the entity was already stopping (a repeated hand-off request).</summary>
    public bool TryBeginStopping()
    {
        if (Stopping)
        {
            return false;
        }
        MoveTo(PartitionState.Stopping);
        return true;
    }

    /// <summary>The entity stopped: off the board (and out of the stalled gauge).</summary>
    public void Remove()
    {
        MoveTo(PartitionState.Stopping);
        board.Remove(entityId);
    }

    public PartitionStatus Snapshot() => new(
        entityId, consumer, source, partition, node, _paused && State != PartitionState.Stopping ? PartitionState.Paused : State,
        _delivered, _deadLettered, _errors, _lastError, _lastErrorAt, _lastActivityAt, _lag, _position);
}
