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
    private KafkaGroupMember? _member;

    public KafkaGroupMemberActor(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving)
    {
        _leaving = leaving;
        _consumer = consumer;
        _options = options;
        _settings = settings;
        _loggerFactory = loggerFactory;

        Receive<AcquireKafkaGrant>(m => Sender.Tell(Member.Acquire(m.Topic, m.Partition, Sender)));
        Receive<RenewKafkaGrant>(m => Sender.Tell(Member.Renew(m.Topic, m.Partition, m.Epoch, Sender)));
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

    /// <param name="leaving">Gets the member's leave of the group when the actor stops (the node waits for it before it exits).</param>
    public static Props Props(string consumer, KafkaConsumerOptions options, KafkaGroupMemberSettings settings, ILoggerFactory loggerFactory,
        Action<Task> leaving) =>
        Akka.Actor.Props.Create(() => new KafkaGroupMemberActor(consumer, options, settings, loggerFactory, leaving));

    /// <summary>Name of the singleton manager (same on every node) for one kafka consumer.</summary>
    public static string SingletonName(string consumer) => "kafka-member-" + consumer;

    protected override void PreStart()
    {
        var self = Self;
        _member = new KafkaGroupMember(_consumer, _options, _settings, _loggerFactory,
            (holder, topic, partition, epoch) => (holder as IActorRef)?.Tell(new KafkaGrantRevoked(topic, partition, epoch), self));
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
