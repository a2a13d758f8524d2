using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Every timing of one kafka consumer on a node, validated together. The group's two (session timeout, heartbeat
/// interval) come from the consumer's options; the rest are ours. The defaults are for production; tests shorten them.
/// </summary>
internal sealed record KafkaSettings
{
    public KafkaGroupProtocol GroupProtocol { get; init; } = KafkaGroupProtocol.Classic;

    /// <summary>How long the group keeps a silent member's partitions (classic: sent; consumer protocol: the broker's).</summary>
    public TimeSpan SessionTimeout { get; init; } = TimeSpan.FromSeconds(6);

    /// <summary>How often the member heartbeats (classic: sent; consumer protocol: the broker's).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often marked offsets are committed (one request for every partition of the node).</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest the poll thread waits on the consumer queue; bounds the latency of rebalance callbacks.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Per attempt of reading a partition's committed offset.</summary>
    public TimeSpan CommittedLookupTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a revocation waits for its partitions' in-flight batches and final commits.</summary>
    public TimeSpan RevokeBudget { get; init; } = TimeSpan.FromSeconds(12);

    /// <summary>How long a released partition retries its final commit.</summary>
    public TimeSpan FinalCommitTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the member refreshes topic metadata (partitions added to a topic are assigned within this).</summary>
    public TimeSpan MetadataRefresh { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A pause of this process at least this long (a stop signal, a long GC) suspends delivery until the group had a
    /// chance to say whether this member is still in it (<see cref="SuspensionAfterFreeze"/>).
    /// </summary>
    public TimeSpan FreezeThreshold { get; init; } = TimeSpan.FromMilliseconds(1500);

    /// <summary>How often a partition entity that does not own its partition on this node looks again.</summary>
    public TimeSpan AttachRetry { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often a node asks the shard region to run the partitions assigned to it that have no entity here yet.</summary>
    public TimeSpan PlacementInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Two heartbeats and a second: librdkafka's first heartbeat after a freeze learns whether the group dropped the
    /// member (then its partitions are lost, nothing is committed); until then nothing is delivered.
    /// </summary>
    public TimeSpan SuspensionAfterFreeze => HeartbeatInterval * 2 + TimeSpan.FromSeconds(1);

    public static KafkaSettings From(KafkaConsumerOptions options) => new()
    {
        GroupProtocol = options.GroupProtocol,
        SessionTimeout = options.SessionTimeout,
        HeartbeatInterval = options.HeartbeatInterval,
        // Short sessions (tests, fast fail-over) need a shorter freeze threshold to stay below the session.
        FreezeThreshold = TimeSpan.FromTicks(
            Math.Min(TimeSpan.FromMilliseconds(1500).Ticks, (options.SessionTimeout - options.HeartbeatInterval).Ticks / 2)),
    };

    /// <summary>Throws with what to change when the timings contradict each other.</summary>
    public KafkaSettings Validate()
    {
        if (HeartbeatInterval * 3 > SessionTimeout)
        {
            throw new ArgumentException(
                $"kafka heartbeat interval {HeartbeatInterval} must be at most a third of the session timeout {SessionTimeout}");
        }
        if (FreezeThreshold >= SessionTimeout - HeartbeatInterval)
        {
            throw new ArgumentException($"kafka freeze threshold {FreezeThreshold} must be below the session timeout minus a heartbeat " +
                $"({SessionTimeout - HeartbeatInterval})");
        }
        if (new[]
            {
                CommitInterval, PollTimeout, CommittedLookupTimeout, RevokeBudget, FinalCommitTimeout, MetadataTimeout, AttachRetry,
                PlacementInterval
            }
            .Any(t => t <= TimeSpan.Zero))
        {
            throw new ArgumentException($"kafka timings must be positive ({this})");
        }
        return this;
    }
}
