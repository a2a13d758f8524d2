using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// The group member's self-fence in real node processes: the member's node (the oldest) loses sight of both other
/// nodes (they are frozen), so it sits in a minority that the Split Brain Resolver will down; it must stop granting at
/// once, so that its owners' grants run out before the other side could start a member of its own.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed class KafkaMemberFenceProcessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_member_cut_off_in_a_minority_stops_granting_and_its_owners_stop_delivering()
    {
        using var broker = KafkaMockCluster.Create(brokers: 1);
        var topic = $"fence-{Guid.NewGuid():N}";
        broker.CreateTopic(topic, 6);
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            KafkaConsumers = [new KafkaConsumerConfig("k_fence", broker.Bootstrap, $"g-{Guid.NewGuid():N}", [topic])],
            // Long enough that the minority does not down itself (and exit) before the fence is looked at.
            ClusterSettings = new Dictionary<string, string> { ["downing_stable_after"] = "60s" },
        };
        await using var cluster = NodeCluster.Create(3, template);
        try
        {
            await cluster.StartReadyAsync(0, TimeSpan.FromSeconds(60));
            await cluster[0].WaitForOutputAsync("KafkaGroupMember[4051]", TimeSpan.FromSeconds(60));
            await cluster.StartReadyAsync(1, TimeSpan.FromSeconds(60));
            await cluster.StartReadyAsync(2, TimeSpan.FromSeconds(60));
            // Partitions of node 0 (the member's node) run under grants from the member before the cut.
            await cluster[0].WaitUntilAsync(async () => (await cluster[0].PartitionsAsync()).Count > 0, "partitions on node 0", TimeSpan.FromSeconds(60));
            Assert.DoesNotContain(cluster[0].Lines, l => l.Contains("[4064]", StringComparison.Ordinal));

            cluster[1].Stop();
            cluster[2].Stop();

            await cluster[0].WaitForOutputAsync("KafkaGroupMemberActor[4064]", TimeSpan.FromSeconds(30));
            // Its own owners can no longer renew: each stops when its grant runs out.
            await cluster[0].WaitForOutputAsync("lost its delivery grant (expired before a renewal answered)", TimeSpan.FromSeconds(30));
        }
        finally
        {
            foreach (var i in Enumerable.Range(1, 2).Where(i => cluster[i].IsStopped))
            {
                cluster[i].Continue();
            }
            output.WriteLine(cluster.Tails(60));
        }
    }
}
