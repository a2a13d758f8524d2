namespace Centrifugo.Actors.Kafka;

// Messages between a kafka consumer's partition entities / hubs (any node) and its group member singleton
// (KafkaGroupMemberActor). They travel through the singleton proxy, so they are plain serialisable records.

/// <summary>Entity → member: asks for the right to deliver one partition (a time-bounded grant).</summary>
internal sealed record AcquireKafkaGrant(string Topic, int Partition);

/// <summary>Entity → member: extends the grant it holds; sent every <see cref="KafkaGroupMemberSettings.RenewInterval"/>.</summary>
internal sealed record RenewKafkaGrant(string Topic, int Partition, long Epoch);

/// <summary>Entity → member: the entity stopped (after its final commit); the partition may be granted again at once.</summary>
internal sealed record ReleaseKafkaGrant(string Topic, int Partition, long Epoch);

internal enum KafkaGrantStatus
{
    /// <summary>Granted (or renewed): valid for <see cref="KafkaGrantReply.Ttl"/> from the moment the request was sent.</summary>
    Granted,
    /// <summary>The group did not assign this partition to this deployment: do not run it.</summary>
    NotOwned,
    /// <summary>Another incarnation still holds an unexpired grant, or the member is waiting out grants it may not know: retry.</summary>
    Busy,
    /// <summary>
    /// The member just started and the group has not assigned it anything yet: a renewal keeps its grant until it
    /// expires, an acquisition retries after <see cref="KafkaGrantReply.RetryAfter"/>.
    /// </summary>
    NotReady,
    /// <summary>Renewal only: the grant is gone (revoked, superseded, member fenced): stop delivering now.</summary>
    Lost,
}

/// <summary>Member → entity: the answer to <see cref="AcquireKafkaGrant"/> or <see cref="RenewKafkaGrant"/>.</summary>
internal sealed record KafkaGrantReply(string Topic, int Partition, long Epoch, KafkaGrantStatus Status, TimeSpan Ttl, TimeSpan RetryAfter);

/// <summary>Member → entity: the group took the partition away (rebalance) or the member lost its membership: stop.</summary>
internal sealed record KafkaGrantRevoked(string Topic, int Partition, long Epoch);

/// <summary>One offset to commit (the next offset to read) on behalf of the holder of grant <paramref name="Epoch"/>.</summary>
internal sealed record KafkaCommitEntry(string Topic, int Partition, long Epoch, long Offset);

internal enum KafkaCommitOutcome
{
    Committed,
    /// <summary>Not sent: the group's offset is already at or past it (a commit never moves an offset backwards).</summary>
    Behind,
    /// <summary>Refused: the epoch is not the partition's current grant (a previous incarnation, or the grant expired).</summary>
    StaleEpoch,
    /// <summary>Refused: this deployment's member does not own the partition.</summary>
    NotOwned,
    /// <summary>Refused by the broker: the member's generation is stale (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID).</summary>
    Fenced,
    /// <summary>Not committed for a transient reason (coordinator unavailable, timeout); retried with the next batch.</summary>
    Failed,
    /// <summary>
    /// Not committed yet: the member just moved and has not been assigned the partition, or not adopted the holder's
    /// grant, yet. Retried with the next batch, without a warning: this is every graceful member move.
    /// </summary>
    Pending,
}

/// <summary>Hub → member: commits through the group member, so the broker checks the group generation.</summary>
internal sealed record CommitKafkaOffsets(IReadOnlyList<KafkaCommitEntry> Entries);

/// <summary>Member → hub: one outcome per entry, same order.</summary>
internal sealed record KafkaCommitReply(IReadOnlyList<KafkaCommitOutcome> Outcomes);

/// <summary>Keeper catalog → member: which partitions does this deployment own right now?</summary>
internal sealed record GetOwnedKafkaPartitions
{
    public static readonly GetOwnedKafkaPartitions Instance = new();
}

internal sealed record KafkaOwnedPartition(string Topic, int Partition);

/// <param name="Assigned">False while the member has had no assignment from the group yet (it just started or moved).</param>
internal sealed record OwnedKafkaPartitions(IReadOnlyList<KafkaOwnedPartition> Partitions, bool Assigned = true);

/// <summary>
/// Group member → the <see cref="KafkaMemberWitness"/> of another node: "is the member at <paramref name="Address"/>
/// (incarnation <paramref name="Uid"/>) up and reachable in your view?" Asked after the member stayed out of the
/// group following a freeze; a node that downed and removed the asker has quarantined it and never answers.
/// </summary>
internal sealed record ConfirmKafkaMemberNode(long ProbeId, string Address, int Uid);

/// <summary>Witness → group member: the answer to <see cref="ConfirmKafkaMemberNode"/>.</summary>
internal sealed record KafkaMemberNodeSeen(long ProbeId, string Witness, bool UpAndReachable);
