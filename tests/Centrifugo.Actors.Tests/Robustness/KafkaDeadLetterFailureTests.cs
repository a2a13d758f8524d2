using System.Net;
using Centrifugo.Actors.Tests.KafkaNode;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>K3/K4: a dead-letter copy that can never be written stalls loudly and redelivers nothing already delivered.</summary>
public sealed class KafkaDeadLetterFailureTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    [Fact]
    public async Task An_oversized_poison_record_stalls_the_partition_loudly_without_redelivering_the_commands_after_it()
    {
        var topic = Topic("oversize", 1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = KafkaCluster.Bootstrap, MessageMaxBytes = 4_000_000, EnableIdempotence = true, Acks = Acks.All, LingerMs = 1,
               }).SetLogHandler((_, _) => { }).Build())
        {
            // Not JSON, 1.2 MB: dead-lettered, but the copy exceeds the producer's message.max.bytes (1,000,000).
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = new byte[1_200_000] });
            await ProduceEnvelopesAsync(producer, topic, 0, "big:", 20);
        }

        await using var node = await StartNodeAsync(TestNode.Kafka("k_big", KafkaCluster.Bootstrap, group, topic));

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri(node.AdminUrl + "/health/ready"))).StatusCode);
        // The commands read in the poison's batch are delivered while its copy is retried (how many share its batch
        // depends on the fetch: none when the poison came alone); several retries later each of them was still
        // delivered exactly once, in order, and nothing after the poison is committed.
        var retries = node.Logs.Lines.Count(l => l.Contains("[4035]", StringComparison.Ordinal));
        await Poll.UntilAsync(() => node.Logs.Lines.Count(l => l.Contains("[4035]", StringComparison.Ordinal)) >= retries + 3, "copy retried", TimeSpan.FromSeconds(30));
        var received = StandIn.ReceivedFor("big:p0").Select(Seq).ToArray();
        Assert.Equal(Enumerable.Range(0, received.Length).Select(i => (long)i), received);
        Assert.Null(Committed(KafkaCluster.Bootstrap, group, topic, 0));
        Assert.Contains(node.Logs.Lines, l => l.Contains("[4035]", StringComparison.Ordinal) && l.Contains($"Topic={topic}", StringComparison.Ordinal)
            && l.Contains("Offset=0", StringComparison.Ordinal));
    }
}
