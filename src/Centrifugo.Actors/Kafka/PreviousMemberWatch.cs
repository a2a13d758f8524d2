using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// What this node saw of the members that left the cluster recently, so that a group member starting here knows how
/// long grants of its previous instance (on the previous oldest node) can still run. A new instance grants nothing for
/// one grant TTL after it starts, because a previous instance may have given grants it does not know. That wait is
/// needed after a graceful hand-over (the previous instance answered renewals until a moment ago), but not after the
/// previous node was downed: its member stopped renewing when it lost the majority (<see cref="KafkaMemberFence"/>) or
/// when it died, which is when this node saw it unreachable, give or take the failure detector's skew between the two
/// sides; its grants have run out one TTL later, usually before the downing decision and this start.
/// Thread-safe: written by <see cref="Listener"/>, read by the member.
/// </summary>
internal sealed class PreviousMemberWatch
{
    /// <summary>How far apart the two sides of a partition may notice it (heartbeats stop both ways at once; detection jitters by about a heartbeat).</summary>
    public static readonly TimeSpan DetectionSkew = TimeSpan.FromSeconds(1);

    /// <summary>Removals older than this no longer matter for a member starting now.</summary>
    private static readonly TimeSpan Horizon = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long after its removal was seen here a node not seen unreachable here (a graceful leave, or downed by the
    /// others) may still have answered renewals: its singleton hands over, or its member fences itself, while the removal
    /// spreads (hand-over retries every second, gossip every 500 ms).
    /// </summary>
    public static readonly TimeSpan RemovalSlack = TimeSpan.FromSeconds(5);

    private readonly Lock _gate = new();
    private readonly Dictionary<Address, long> _unreachableSince = [];
    private readonly List<Removal> _removals = [];

    /// <summary>A member left: <c>Downed</c> when it was downed (not a graceful exit); timestamps are Stopwatch ticks.</summary>
    public readonly record struct Removal(Address Address, bool Downed, long RemovedAt, long? UnreachableSince);

    public void Unreachable(Address address, long now)
    {
        lock (_gate)
        {
            _unreachableSince.TryAdd(address, now);
        }
    }

    public void Reachable(Address address)
    {
        lock (_gate)
        {
            _unreachableSince.Remove(address);
        }
    }

    public void Removed(Address address, bool downed, long now)
    {
        lock (_gate)
        {
            _removals.Add(new Removal(address, downed, now, _unreachableSince.TryGetValue(address, out var since) ? since : null));
            _unreachableSince.Remove(address);
            _removals.RemoveAll(r => now - r.RemovedAt > Ticks(Horizon));
        }
    }

    /// <summary>
    /// From when (Stopwatch ticks) a member starting at <paramref name="now"/> may give fresh grants: one TTL after its
    /// start when nobody was removed lately (a first start, or a graceful hand-over not yet followed by the removal),
    /// else when the grants of every member removed lately have certainly run out: one TTL plus the detection skew after
    /// a downed node was seen unreachable here, one TTL plus <see cref="RemovalSlack"/> after the removal of any other;
    /// never later than one TTL after the start.
    /// </summary>
    public long AuthorityFrom(long now, TimeSpan grantTtl)
    {
        lock (_gate)
        {
            return AuthorityFrom(_removals.Where(r => now - r.RemovedAt <= Ticks(Horizon)).ToArray(), now, grantTtl);
        }
    }

    public static long AuthorityFrom(IReadOnlyCollection<Removal> recentRemovals, long now, TimeSpan grantTtl)
    {
        var full = now + Ticks(grantTtl);
        if (recentRemovals.Count == 0)
        {
            // A first start, or a graceful hand-over (the previous instance answered until a moment ago): wait a TTL.
            return full;
        }
        // Until 2026-11-29 any graceful removal in the last minute meant a whole TTL: a kill shortly after a rolling
        // restart (the chaos test's SIGSTOP after its SIGTERM) kept the new member's owners waiting 3 s for nothing.
        var lastGrantEnds = recentRemovals.Max(r => r.Downed && r.UnreachableSince is { } since
            ? since + Ticks(grantTtl + DetectionSkew)
            : r.RemovedAt + Ticks(grantTtl + RemovalSlack));
        return Math.Clamp(lastGrantEnds, now, full);
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Feeds a <see cref="PreviousMemberWatch"/> from this node's cluster events (started with the node).</summary>
    internal sealed class Listener : ReceiveActor
    {
        public Listener(PreviousMemberWatch watch)
        {
            Receive<ClusterEvent.UnreachableMember>(e => watch.Unreachable(e.Member.Address, Stopwatch.GetTimestamp()));
            Receive<ClusterEvent.ReachableMember>(e => watch.Reachable(e.Member.Address));
            Receive<ClusterEvent.MemberRemoved>(e => watch.Removed(e.Member.Address, e.PreviousStatus == MemberStatus.Down, Stopwatch.GetTimestamp()));
            Receive<ClusterEvent.IMemberEvent>(_ => { });
            Receive<ClusterEvent.CurrentClusterState>(_ => { });
        }

        protected override void PreStart() =>
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(ClusterEvent.IMemberEvent), typeof(ClusterEvent.IReachabilityEvent));

        protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);

        public static Props Props(PreviousMemberWatch watch) => Akka.Actor.Props.Create(() => new Listener(watch));
    }
}
