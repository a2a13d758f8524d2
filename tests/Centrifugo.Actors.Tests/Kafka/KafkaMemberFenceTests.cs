using Akka.Actor;
using Akka.Cluster;
using Centrifugo.Actors.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>The group member's self-fence follows keep-majority: a member that may be downed stops granting at once.</summary>
[Trait("Category", "Fast")]
public sealed class KafkaMemberFenceTests
{
    private static Address Node(int port) => new("akka.tcp", "centrifugo-actors", "127.0.0.1", port);

    private static (Address, bool)[] Members(params (int Port, bool Reachable)[] members) =>
        members.Select(m => (Node(m.Port), m.Reachable)).ToArray();

    [Fact]
    public void A_node_that_sees_a_majority_keeps_granting()
    {
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true))));
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, true), (3, false))));
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, true), (3, true), (4, false), (5, false))));
        // Leaving gracefully (SIGTERM): the member keeps answering until its singleton hands over.
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Leaving, Members((1, true), (2, true), (3, true))));
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Exiting, Members((1, true), (2, true), (3, true))));
    }

    [Fact]
    public void A_node_in_a_minority_or_downed_stops_granting()
    {
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, false), (3, false))));
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, true), (3, false), (4, false), (5, false))));
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Down, Members((1, true), (2, true), (3, true))));
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Removed, Members((1, true))));
    }

    [Fact]
    public void With_exactly_half_the_side_holding_the_lowest_address_keeps_granting()
    {
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, false))));
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, false), (2, true))));
        Assert.False(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, true), (2, true), (3, false), (4, false))));
        Assert.True(KafkaMemberFence.IsFenced(MemberStatus.Up, Members((1, false), (2, false), (3, true), (4, true))));
    }
}
