using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Sharding;

namespace Centrifugo.Actors.Tests.Sharding;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PartitionSpreadTests
{
    private static List<string> Pg(string consumer, int from, int count) =>
        Enumerable.Range(from, count).Select(p => PartitionEntityId.Outbox(consumer, p)).ToList();

    private static List<string> Kafka(string consumer, int from, int count) =>
        Enumerable.Range(from, count).Select(p => PartitionEntityId.Kafka(consumer, "t", p)).ToList();

    private static List<List<string>> Apply(List<List<string>> nodes, IReadOnlyList<(string Shard, int To)> moves)
    {
        var result = nodes.Select(n => n.Except(moves.Select(m => m.Shard)).ToList()).ToList();
        foreach (var (shard, to) in moves)
        {
            result[to].Add(shard);
        }
        return result;
    }

    private static void AssertSpread(List<List<string>> nodes)
    {
        var totals = nodes.Select(n => n.Count).ToArray();
        Assert.True(totals.Max() - totals.Min() <= 1, $"totals {string.Join("/", totals)}");
        foreach (var consumer in nodes.SelectMany(n => n).Select(PartitionSpread.ConsumerOf).Distinct())
        {
            var counts = nodes.Select(n => n.Count(s => PartitionSpread.ConsumerOf(s) == consumer)).ToArray();
            Assert.True(counts.Max() - counts.Min() <= 1, $"{consumer}: {string.Join("/", counts)}");
        }
    }

    [Fact]
    public void Consumer_of_a_partition_is_its_source_and_name()
    {
        Assert.Equal("pg:main", PartitionSpread.ConsumerOf("pg:main:12"));
        Assert.Equal("kafka:events", PartitionSpread.ConsumerOf("kafka:events:orders:3"));
    }

    [Fact]
    public void Allocation_of_new_partitions_fills_the_nodes_evenly_per_consumer()
    {
        var nodes = new List<List<string>> { new(), new(), new() };
        foreach (var shard in Pg("a", 0, 24).Concat(Kafka("k", 0, 8)))
        {
            nodes[PartitionSpread.Allocate(nodes, shard)].Add(shard);
        }
        AssertSpread(nodes);
        Assert.Equal([11, 11, 10], nodes.Select(n => n.Count).OrderDescending());
    }

    [Fact]
    public void Partitions_leave_a_node_that_does_not_know_their_consumer_and_spread_over_those_that_do()
    {
        // Node 0 runs the old configuration (only "a"); "b" was placed there before any node knew it.
        var nodes = new List<List<string>> { Pg("a", 0, 4).Concat(Pg("b", 0, 6)).ToList(), Pg("a", 4, 4), new() };
        bool Knows(int node, string consumer) => node != 0 || consumer == "pg:a";

        var moves = PartitionSpread.Rebalance(nodes, Knows);
        var after = Apply(nodes, moves);

        Assert.DoesNotContain(after[0], s => PartitionSpread.ConsumerOf(s) == "pg:b");
        Assert.Equal([3, 3], after.Skip(1).Select(n => n.Count(s => PartitionSpread.ConsumerOf(s) == "pg:b")));
        var a = after.Select(n => n.Count(s => PartitionSpread.ConsumerOf(s) == "pg:a")).ToArray();
        Assert.True(a.Max() - a.Min() <= 1, string.Join("/", a));
        Assert.Empty(PartitionSpread.Rebalance(after, Knows));
        // Nothing of "b" ever planned onto node 0.
        Assert.DoesNotContain(moves, m => m.To == 0 && PartitionSpread.ConsumerOf(m.Shard) == "pg:b");
    }

    [Fact]
    public void A_joined_node_gets_its_share_and_only_that_many_partitions_move()
    {
        // 22 / 1 / 1 right after a join, as measured before this strategy.
        var nodes = new List<List<string>> { Pg("a", 0, 22), Pg("a", 22, 1), Pg("a", 23, 1) };

        var moves = PartitionSpread.Rebalance(nodes);

        Assert.Equal(14, moves.Count); // 22 → 8, nothing else moves
        Assert.All(moves, m => Assert.Contains(m.Shard, nodes[0]));
        AssertSpread(Apply(nodes, moves));
    }

    [Fact]
    public void Several_consumers_are_each_spread_and_the_totals_too()
    {
        // Bucket-style skew: one node holds all of the kafka consumer, another most of the outbox.
        var nodes = new List<List<string>>
        {
            Pg("a", 0, 12).Concat(Kafka("k", 0, 9)).ToList(),
            Pg("a", 12, 6),
            Pg("a", 18, 6).Concat(Pg("b", 0, 3)).ToList(),
        };

        var after = Apply(nodes, PartitionSpread.Rebalance(nodes));

        AssertSpread(after);
        Assert.Equal(nodes.SelectMany(n => n).Order(), after.SelectMany(n => n).Order());
    }

    [Fact]
    public void A_balanced_placement_is_left_alone()
    {
        var nodes = new List<List<string>>
        {
            Pg("a", 0, 8).Concat(Kafka("k", 0, 3)).ToList(),
            Pg("a", 8, 8).Concat(Kafka("k", 3, 2)).ToList(),
            Pg("a", 16, 7).Concat(Kafka("k", 5, 3)).ToList(),
        };
        Assert.Empty(PartitionSpread.Rebalance(nodes));
    }

    [Fact]
    public void Random_placements_always_end_spread_within_one_rebalance_round()
    {
        var random = new Random(7);
        for (var round = 0; round < 200; round++)
        {
            var nodeCount = random.Next(2, 6);
            var nodes = Enumerable.Range(0, nodeCount).Select(_ => new List<string>()).ToList();
            var shards = Pg("a", 0, random.Next(0, 40)).Concat(Pg("b", 0, random.Next(0, 10))).Concat(Kafka("k", 0, random.Next(0, 30)));
            foreach (var shard in shards)
            {
                nodes[random.Next(nodeCount)].Add(shard);
            }

            var moves = PartitionSpread.Rebalance(nodes);

            AssertSpread(Apply(nodes, moves));
            Assert.Equal(moves.Count, moves.Select(m => m.Shard).Distinct().Count());
        }
    }

    [Fact]
    public void A_rebalance_round_waits_for_every_up_member_to_register_its_region_within_a_bound()
    {
        var a = new Akka.Actor.Address("akka.tcp", "sys", "10.0.0.1", 1);
        var b = new Akka.Actor.Address("akka.tcp", "sys", "10.0.0.2", 1);
        var c = new Akka.Actor.Address("akka.tcp", "sys", "10.0.0.3", 1);
        var registration = new RegionRegistration(TimeSpan.FromSeconds(10));
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        Assert.True(registration.AllRegistered([a, b], [a, b], t0));
        // c is Up, its region not registered yet: no round (it would move partitions to a and b, then again to c).
        Assert.False(registration.AllRegistered([a, b, c], [a, b], t0));
        Assert.False(registration.AllRegistered([a, b, c], [a, b], t0.AddSeconds(9)));
        Assert.True(registration.AllRegistered([a, b, c], [a, b, c], t0.AddSeconds(9.5)));

        // A member that never registers holds rounds back for the bound only, counted from when it was first missing.
        Assert.False(registration.AllRegistered([a, b, c], [a, b], t0.AddSeconds(20)));
        Assert.False(registration.AllRegistered([a, b, c], [a, b], t0.AddSeconds(29)));
        Assert.True(registration.AllRegistered([a, b, c], [a, b], t0.AddSeconds(30)));
        // Regions of members that are not Up (leaving, removed) are not waited for.
        Assert.True(registration.AllRegistered([a], [a, b], t0.AddSeconds(31)));
    }

    [Fact]
    public void No_round_is_planned_while_partitions_moved_by_the_last_one_wait_to_be_placed()
    {
        var b = new Akka.Actor.Address("akka.tcp", "sys", "10.0.0.2", 1);
        var c = new Akka.Actor.Address("akka.tcp", "sys", "10.0.0.3", 1);
        var planned = new PlannedMoves(TimeSpan.FromSeconds(60));
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        Assert.False(planned.AwaitingPlacement([], t0));

        planned.Plan([("pg:a:1", b), ("pg:a:2", c), ("pg:a:3", c)], t0);
        // Handed off, not placed again yet (nowhere in the allocations): the next tick must not plan.
        Assert.True(planned.AwaitingPlacement(["pg:a:0"], t0.AddSeconds(1)));
        // pg:a:1 is placed where the plan says; pg:a:2's hand-off failed, so it is still allocated where it was.
        Assert.Equal(b, planned.TakeTarget("pg:a:1"));
        Assert.Null(planned.TakeTarget("pg:a:1"));
        Assert.True(planned.AwaitingPlacement(["pg:a:0", "pg:a:1", "pg:a:2"], t0.AddSeconds(2)));
        Assert.Equal(1, planned.Count);
        Assert.Equal(c, planned.TakeTarget("pg:a:3"));
        Assert.False(planned.AwaitingPlacement(["pg:a:0", "pg:a:1", "pg:a:2", "pg:a:3"], t0.AddSeconds(3)));

        // A moved partition that is never placed again holds rounds back for the bound only.
        planned.Plan([("pg:a:9", b)], t0);
        Assert.True(planned.AwaitingPlacement([], t0.AddSeconds(59)));
        Assert.False(planned.AwaitingPlacement([], t0.AddSeconds(60)));
        Assert.Null(planned.TakeTarget("pg:a:9"));
    }
}
