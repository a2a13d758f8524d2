using Akka.Actor;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The cluster singleton that is this deployment's member of one kafka consumer's consumer group
/// (<see cref="KafkaGroupMember"/>): it answers grant requests of partition entities, commits offsets for the hubs
/// and tells the keeper which partitions this deployment owns.
/// </summary>
internal sealed class KafkaGroupMemberActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(500);
    private readonly string _consumer;
    private readonly KafkaConsumerOptions _options;
    private readonly KafkaGroupMemberSettings _settings;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Action<Task> _leaving;
    private readonly PreviousMemberWatch _previous;
    private readonly KafkaStandbyMembers? _standbys;
    private readonly Akka.Cluster.Cluster _cluster;
    private readonly ILogger _logger;
    private KafkaGroupMember? _member;
    private bool _fenced;
    private object? _seenState;
    private object? _seenSelf;
    private long _probeId;
    private readonly HashSet<string> _confirmedBy = [];

    public ITimerScheduler Timers { get; set; } = null!;

    public KafkaGroupMemberActor(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving, PreviousMemberWatch previous, KafkaStandbyMembers? standbys)
    {
        _leaving = leaving;
        _previous = previous;
        _standbys = standbys;
        _cluster = Akka.Cluster.Cluster.Get(Context.System);
        _logger = loggerFactory.CreateLogger<KafkaGroupMemberActor>();
        _consumer = consumer;
        _options = options;
        _settings = settings;
        _loggerFactory = loggerFactory;

        // A member whose node is downed or cut off in a minority gives and extends no grant (KafkaMemberFence): its
        // holders' grants run out within one TTL, before the other side's new member grants anything.
        Receive<AcquireKafkaGrant>(m => Sender.Tell(Fenced()
            ? new KafkaGrantReply(m.Topic, m.Partition, 0, KafkaGrantStatus.Busy, _settings.GrantTtl, _settings.RenewInterval)
            : Member.Acquire(m.Topic, m.Partition, Sender)));
        Receive<RenewKafkaGrant>(m => Sender.Tell(Fenced()
            ? new KafkaGrantReply(m.Topic, m.Partition, m.Epoch, KafkaGrantStatus.NotReady, _settings.GrantTtl, TimeSpan.Zero)
            : Member.Renew(m.Topic, m.Partition, m.Epoch, Sender)));
        Receive<ReleaseKafkaGrant>(m => Member.Release(m.Topic, m.Partition, m.Epoch));
        Receive<CommitKafkaOffsets>(m =>
        {
            var replyTo = Sender;
            Member.CommitAsync(m.Entries, CancellationToken.None).ContinueWith(
                t => replyTo.Tell(t.IsCompletedSuccessfully
                    ? new KafkaCommitReply(t.Result)
                    : new KafkaCommitReply(m.Entries.Select(_ => KafkaCommitOutcome.Failed).ToArray())),
                TaskScheduler.Default);
        });
        Receive<GetOwnedKafkaPartitions>(_ => Sender.Tell(new OwnedKafkaPartitions(Member.OwnedPartitions(), Member.HasBeenAssigned)));

        // After a freeze during which the group dropped the member (KafkaGroupMember.OnLost), the member stays out of the
        // group until a majority of the cluster, asked after the thaw, confirms that this node is still up and
        // reachable. A node that was downed meanwhile never gets that confirmation (the others answer "down" or, having
        // quarantined it, nothing) and exits without having rejoined: no zombie member in the group.
        Receive<StayedOutOfGroup>(_ =>
        {
            _confirmedBy.Clear();
            Timers.StartPeriodicTimer(ProbeTimer.Instance, ProbeTimer.Instance, TimeSpan.Zero, ProbeInterval);
        });
        Receive<ProbeTimer>(_ => Probe());
        Receive<KafkaMemberNodeSeen>(m =>
        {
            if (m.ProbeId == _probeId && m.UpAndReachable && Member.IsOutOfGroup)
            {
                _confirmedBy.Add(m.Witness);
                RejoinIfConfirmed();
            }
        });
    }

    private void Probe()
    {
        if (!Member.IsOutOfGroup)
        {
            Timers.Cancel(ProbeTimer.Instance);
            return;
        }

        // Each round asks afresh: only answers to this round's question count (a node's view can turn against it).
        _probeId++;
        _confirmedBy.Clear();
        foreach (var peer in Peers())
        {
            Context.ActorSelection(new RootActorPath(peer.Address) / "user" / KafkaMemberWitness.Name)
                .Tell(new ConfirmKafkaMemberNode(_probeId, _cluster.SelfAddress.ToString(), _cluster.SelfUniqueAddress.Uid));
        }
        RejoinIfConfirmed();
    }

    private IReadOnlyList<Akka.Cluster.Member> Peers() => _cluster.State.Members
        .Where(m => KafkaMemberFence.Counts(m.Status) && !m.UniqueAddress.Equals(_cluster.SelfUniqueAddress))
        .ToArray();

    private void RejoinIfConfirmed()
    {
        var members = Peers().Count + 1;
        // This node counts for itself, unless its own view already says it was downed.
        if (Fenced() || (1 + _confirmedBy.Count) * 2 <= members)
        {
            return;
        }

        KafkaMemberLog.MembershipConfirmed(_logger, _consumer, 1 + _confirmedBy.Count, members);
        Timers.Cancel(ProbeTimer.Instance);
        Member.Rejoin();
    }

    private KafkaGroupMember Member => _member ?? throw new InvalidOperationException("group member not started");

    private bool Fenced()
    {
        // Asked on every grant request and renewal: evaluated again only when the cluster view changed (Akka replaces
        // the state and self member objects on every membership or reachability change).
        var (state, self) = (_cluster.State, _cluster.SelfMember);
        if (ReferenceEquals(state, _seenState) && ReferenceEquals(self, _seenSelf))
        {
            return _fenced;
        }
        (_seenState, _seenSelf) = (state, self);
        var fenced = KafkaMemberFence.IsFenced(state, self);
        if (fenced != _fenced)
        {
            _fenced = fenced;
            if (fenced)
            {
                KafkaMemberLog.SelfFenced(_logger, _consumer);
            }
            else
            {
                KafkaMemberLog.SelfFenceLifted(_logger, _consumer);
            }
        }
        return fenced;
    }

    /// <param name="leaving">Gets the member's leave of the group when the actor stops (the node waits for it before it exits).</param>
    /// <param name="previous">This node's view of recently removed members (how long a previous instance's grants may run).</param>
    /// <param name="standbys">Members this node joined to their groups ahead of the singleton (null: none are joined).</param>
    public static Props Props(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving, PreviousMemberWatch previous, KafkaStandbyMembers? standbys = null) =>
        Akka.Actor.Props.Create(() => new KafkaGroupMemberActor(consumer, options, settings, loggerFactory, leaving, previous, standbys));

    /// <summary>Name of the singleton manager (same on every node) for one kafka consumer.</summary>
    public static string SingletonName(string consumer) => "kafka-member-" + consumer;

    protected override void PreStart()
    {
        var self = Self;
        Action<object, string, int, long> revokeHolder =
            (holder, topic, partition, epoch) => (holder as IActorRef)?.Tell(new KafkaGrantRevoked(topic, partition, epoch), self);
        Action<TimeSpan> stayedOut = _ => self.Tell(StayedOutOfGroup.Instance);
        var authorityFrom = _previous.AuthorityFrom(System.Diagnostics.Stopwatch.GetTimestamp(), _settings.GrantTtl);
        // The standby this node joined while the previous member's node was unreachable is already in the group (often
        // already assigned): taking it over saves the join and the broker's rebalance after the downing.
        if (_standbys?.Take(_consumer) is { } standby)
        {
            standby.Adopt(revokeHolder, authorityFrom, stayedOut);
            _member = standby;
            return;
        }
        _member = new KafkaGroupMember(_consumer, _options, _settings, _loggerFactory, revokeHolder, authorityFrom, stayedOut);
    }

    private sealed class StayedOutOfGroup
    {
        public static readonly StayedOutOfGroup Instance = new();
    }

    private sealed class ProbeTimer
    {
        public static readonly ProbeTimer Instance = new();
    }

    protected override void PostStop()
    {
        // Leaving the group can wait for holders (revocation); never block the actor system's thread for it. The node
        // waits for it before the process exits (KafkaConsumerRuntime).
        if (_member is { } member)
        {
            _leaving(member.DisposeAsync().AsTask());
        }
    }
}
