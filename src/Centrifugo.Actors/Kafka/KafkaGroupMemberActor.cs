using Akka.Actor;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// The cluster singleton that is this deployment's member of one kafka consumer's consumer group
/// (<see cref="KafkaGroupMember"/>): it answers grant requests of partition entities, commits offsets for the hubs
/// and tells the keeper which partitions this deployment owns.
/// </summary>
internal sealed class KafkaGroupMemberActor : ReceiveActor
{
    private readonly string _consumer;
    private readonly KafkaConsumerOptions _options;
    private readonly KafkaGroupMemberSettings _settings;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Action<Task> _leaving;
    private readonly PreviousMemberWatch _previous;
    private readonly Akka.Cluster.Cluster _cluster;
    private readonly ILogger _logger;
    private KafkaGroupMember? _member;
    private bool _fenced;
    private object? _seenState;
    private object? _seenSelf;

    public KafkaGroupMemberActor(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving, PreviousMemberWatch previous)
    {
        _leaving = leaving;
        _previous = previous;
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
        Receive<GetOwnedKafkaPartitions>(_ => Sender.Tell(new OwnedKafkaPartitions(Member.OwnedPartitions())));
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
    public static Props Props(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving, PreviousMemberWatch previous) =>
        Akka.Actor.Props.Create(() => new KafkaGroupMemberActor(consumer, options, settings, loggerFactory, leaving, previous));

    /// <summary>Name of the singleton manager (same on every node) for one kafka consumer.</summary>
    public static string SingletonName(string consumer) => "kafka-member-" + consumer;

    protected override void PreStart()
    {
        var self = Self;
        _member = new KafkaGroupMember(_consumer, _options, _settings, _loggerFactory,
            (holder, topic, partition, epoch) => (holder as IActorRef)?.Tell(new KafkaGrantRevoked(topic, partition, epoch), self),
            _previous.AuthorityFrom(System.Diagnostics.Stopwatch.GetTimestamp(), _settings.GrantTtl));
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
