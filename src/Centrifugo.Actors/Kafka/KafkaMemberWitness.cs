using Akka.Actor;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// One per node (also on nodes without kafka consumers): tells a group member on another node whether that member's
/// node is up and reachable in this node's view of the cluster. A member that stayed out of its group after a freeze
/// (<see cref="KafkaGroupMember.IsOutOfGroup"/>) rejoins only once a majority confirmed its node; a node the others
/// downed gets "down" or, once they removed and quarantined it, no answer at all.
/// </summary>
internal sealed class KafkaMemberWitness : ReceiveActor
{
    public const string Name = "kafka-member-witness";

    public KafkaMemberWitness()
    {
        var cluster = Akka.Cluster.Cluster.Get(Context.System);
        Receive<ConfirmKafkaMemberNode>(m =>
        {
            var state = cluster.State;
            var member = state.Members.FirstOrDefault(x => x.UniqueAddress.Uid == m.Uid && x.Address.ToString() == m.Address);
            var upAndReachable = member is not null && KafkaMemberFence.Counts(member.Status) && !state.Unreachable.Contains(member);
            Sender.Tell(new KafkaMemberNodeSeen(m.ProbeId, cluster.SelfAddress.ToString(), upAndReachable));
        });
    }

    public static Props Props() => Akka.Actor.Props.Create(() => new KafkaMemberWitness());
}
