using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using Akka.Hosting;
using Centrifugo.Actors.Kafka;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// One group member singleton per kafka consumer (this deployment's member of its consumer group) plus a proxy on
/// every node; the proxy is what entities (grants), hubs (commits) and the keeper's catalog talk to.
/// </summary>
internal static class KafkaMemberSetup
{
    /// <summary>
    /// How long the node hosting the group members must have been unreachable before the next in line joins standby
    /// members (on top of the failure detector's own pause): a stall this much longer than acceptable_heartbeat_pause
    /// costs a rebalance there and back; a crash is taken over that much later.
    /// </summary>
    internal static readonly TimeSpan StandbyJoinAfter = TimeSpan.FromMilliseconds(500);

    public static AkkaConfigurationBuilder WithKafkaGroupMembers(this AkkaConfigurationBuilder builder, NodeRuntime runtime) =>
        builder.AddStartup((system, _) =>
        {
            // On every node, also one without kafka consumers: a member on another node that stayed out of its group
            // after a freeze needs a majority of the cluster to confirm its node before it rejoins.
            system.ActorOf(KafkaMemberWitness.Props(), KafkaMemberWitness.Name);
            if (runtime.Kafka.Count == 0)
            {
                return;
            }
            var previous = new PreviousMemberWatch();
            system.ActorOf(PreviousMemberWatch.Listener.Props(previous), "kafka-previous-member-watch");
            KafkaStandbyMembers? standbys = null;
            if (runtime.Options.Cluster.KafkaStandbyMember)
            {
                standbys = new KafkaStandbyMembers();
                var consumers = runtime.Kafka.Select(k => new KafkaStandbyConsumer(k.Key, k.Value.Options, k.Value.MemberSettings, k.Value.TrackMemberLeave)).ToArray();
                system.ActorOf(KafkaStandbyMember.Props(standbys, consumers, StandbyJoinAfter, runtime.LoggerFactory), KafkaStandbyMember.Name);
            }
            foreach (var (name, kafka) in runtime.Kafka)
            {
                var proxy = StartSingleton(system, name, kafka.Options, kafka.MemberSettings, runtime.LoggerFactory, kafka.TrackMemberLeave, previous, standbys);
                kafka.Member = proxy;
                kafka.Hub.Committer = (entries, timeout) =>
                    proxy.Ask<KafkaCommitReply>(new CommitKafkaOffsets(entries), timeout).GetAwaiter().GetResult().Outcomes;
            }
        });

    /// <summary>
    /// Starts the singleton manager of one kafka consumer's group member on this node and returns a proxy to wherever
    /// the singleton runs (the oldest node).
    /// </summary>
    private static IActorRef StartSingleton(ActorSystem system, string consumer, Configuration.KafkaConsumerOptions options,
        KafkaGroupMemberSettings settings, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, Action<Task> leaving, PreviousMemberWatch previous,
        KafkaStandbyMembers? standbys)
    {
        var name = KafkaGroupMemberActor.SingletonName(consumer);
        system.ActorOf(
            ClusterSingletonManager.Props(KafkaGroupMemberActor.Props(consumer, options, settings, loggerFactory, leaving, previous, standbys), PoisonPill.Instance,
                ClusterSingletonManagerSettings.Create(system)),
            name);
        return system.ActorOf(
            ClusterSingletonProxy.Props("/user/" + name, ClusterSingletonProxySettings.Create(system)),
            name + "-proxy");
    }
}
