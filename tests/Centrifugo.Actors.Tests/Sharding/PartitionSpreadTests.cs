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
}
