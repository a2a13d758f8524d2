using Akka.Actor;
using Akka.Cluster;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Whether the group member's own node may still speak for the deployment. A member on a node that was downed, or that
/// sits on the side of a network partition the Split Brain Resolver (keep-majority) will down, must stop renewing
/// grants at once: the other side starts a new member after its downing decision and grants the same partitions once
/// the grants it cannot know have expired, while this side's shutdown (hand-offs that cannot reach the coordinator)
/// may take longer than that. Without renewals every grant this member gave ends within one grant TTL of the
/// partition being noticed, well before the other side's new member grants anything.
/// </summary>
internal static class KafkaMemberFence
{
    /// <summary>
    /// True when this node is down/removed, or sees no majority of the cluster as reachable (with exactly half, the
    /// side holding the lowest address keeps going, as keep-majority decides).
    /// </summary>
    public static bool IsFenced(MemberStatus selfStatus, IReadOnlyCollection<(Address Address, bool Reachable)> members)
    {
        if (selfStatus is not (MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting or MemberStatus.WeaklyUp))
        {
            return true;
        }

        if (members.Count == 0)
        {
            return false;
        }

        var reachable = members.Count(m => m.Reachable);
        if (reachable * 2 != members.Count)
        {
            return reachable * 2 < members.Count;
        }

        var lowest = members.Select(m => m.Address).Min(Member.AddressOrdering)!;
        return !members.First(m => m.Address == lowest).Reachable;
    }

    /// <summary>Whether a member counts toward the majority: up, leaving or exiting.</summary>
    public static bool Counts(MemberStatus status) => status is MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting;

    /// <summary>The fence in one view of the cluster (members that count: see <see cref="Counts"/>).</summary>
    public static bool IsFenced(ClusterEvent.CurrentClusterState state, Member self)
    {
        var unreachable = state.Unreachable.Select(m => m.Address).ToHashSet();
        var members = state.Members
            .Where(m => Counts(m.Status))
            .Select(m => (m.Address, Reachable: !unreachable.Contains(m.Address)))
            .ToArray();
        return IsFenced(self.Status, members);
    }
}
