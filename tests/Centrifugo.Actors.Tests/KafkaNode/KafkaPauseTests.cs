using Centrifugo.Actors.Host;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary><c>partitions pause|resume</c> of a Kafka topic-partition (real Kafka protocol, real HTTP).</summary>
public sealed class KafkaPauseTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    private static async Task<int> CliAsync(string url, string id, bool pause)
    {
        using var client = new AdminClient(url, token: null);
        return await AdminCli.RunAsync(
            VerbContext.Create(client, TextWriter.Null, TextWriter.Null), v => AdminCli.PartitionPauseAsync(v, id, pause, json: false));
    }

    [Fact]
    public async Task A_paused_topic_partition_delivers_nothing_and_keeps_its_committed_offset_until_resumed()
    {
        const int perPartition = 50;
        var topic = Topic("pause", 2);
        var group = Unique("g");
        await using var node = await StartNodeAsync(TestNode.Kafka("k_pause", KafkaCluster.Bootstrap, group, topic));
        await node.WaitForPartitionsAsync(2, TimeSpan.FromSeconds(60));
        var id = $"kafka:k_pause:{topic}:1";

        Assert.Equal(AdminCli.Ok, await CliAsync(node.AdminUrl, id, pause: true));
        await Poll.UntilAsync(() => Task.FromResult(node.Board.Snapshot().Any(s => s.EntityId == id && s.State == PartitionState.Paused)),
            "paused", TimeSpan.FromSeconds(30));

        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await ProduceEnvelopesAsync(producer, topic, 0, "kp:", perPartition);
            await ProduceEnvelopesAsync(producer, topic, 1, "kp:", perPartition);
        }
        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == perPartition,
            "partition 0 delivered and committed", TimeSpan.FromSeconds(60));
        Assert.Equal(perPartition, StandIn.ReceivedFor("kp:p0").Count);
        Assert.Empty(StandIn.ReceivedFor("kp:p1"));
        Assert.Null(Committed(KafkaCluster.Bootstrap, group, topic, 1));
        // Positions as `partitions list` shows them: the next offset to process (partition 0 caught up, 1 not started).
        await Poll.UntilAsync(() => node.Board.Snapshot().Any(s => s.EntityId == $"kafka:k_pause:{topic}:0" && s.Position == perPartition),
            "partition 0 position");
        Assert.Contains(node.Board.Snapshot(), s => s.EntityId == id && s.Position is null or 0);

        Assert.Equal(AdminCli.Ok, await CliAsync(node.AdminUrl, id, pause: false));
        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 1) == perPartition,
            "partition 1 delivered and committed after resume", TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, perPartition).Select(i => (long)i), StandIn.ReceivedFor("kp:p1").Select(Seq));
        Assert.DoesNotContain(node.Board.Snapshot(), s => s.State == PartitionState.Paused);

        // The lag gauge carries consumer, topic and partition; both partitions are caught up.
        using var http = new HttpClient();
        await Poll.UntilAsync(async () =>
        {
            var metrics = await http.GetStringAsync(new Uri(node.AdminUrl + "/metrics"));
            return metrics.Contains($"centrifugo_actors_kafka_lag{{consumer_name=\"k_pause\",topic=\"{topic}\",partition=\"1\"}} 0",
                    StringComparison.Ordinal)
                && metrics.Contains($"centrifugo_actors_kafka_lag{{consumer_name=\"k_pause\",topic=\"{topic}\",partition=\"0\"}} 0",
                    StringComparison.Ordinal);
        }, "kafka lag gauge with its labels", TimeSpan.FromSeconds(30));
    }
}
