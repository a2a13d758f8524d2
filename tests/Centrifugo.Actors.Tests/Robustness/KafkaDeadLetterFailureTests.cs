using Centrifugo.Actors.Tests.KafkaNode;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>
/// A poison record as large as a topic holds is dead-lettered (whole, or as a reference when the dead-letter topic
/// refuses it for its size) and the records after it flow: never a stall on its size.
/// </summary>
public sealed class KafkaDeadLetterFailureTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_oversized_poison_record_is_dead_lettered_and_the_records_after_it_flow(bool refusedBySize)
    {
        var topic = Topic("oversize", 1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = KafkaCluster.Bootstrap, MessageMaxBytes = 4_000_000, EnableIdempotence = true, Acks = Acks.All,
                   LingerMs = 1,
               }).SetLogHandler((_, _) => { }).Build())
        {
            // Not JSON, 1.2 MB: dead-lettered; above librdkafka's default message.max.bytes (1,000,000).
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = new byte[1_200_000] });
            await ProduceEnvelopesAsync(producer, topic, 0, "big:", 20);
        }

        if (refusedBySize)
        {
            // The node's only producer is the dead-letter one: its first copy meets MESSAGE_TOO_LARGE (10).
            KafkaCluster.PushRequestErrors(0 /* Produce */, 10);
        }

        await using var node = await StartNodeAsync(TestNode.Kafka("k_big", KafkaCluster.Bootstrap, group, topic));

        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 21,
            "offset committed past every record", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), StandIn.ReceivedFor("big:p0").Select(Seq));
        var copy = Assert.Single(ReadAll(KafkaCluster.Bootstrap, topic + ".dead_letter", 1, 1)).Message;
        Assert.Equal("0", Text(copy.Headers.GetLastBytes(Centrifugo.Actors.Kafka.KafkaDeadLetterProducer.SourceOffsetHeader)));
        Assert.Equal(refusedBySize ? 0 : 1_200_000, copy.Value!.Length);
        Assert.Equal(refusedBySize, copy.Headers.TryGetLastBytes(Centrifugo.Actors.Kafka.KafkaDeadLetterProducer.OmittedHeader, out _));
        Assert.Empty(node.Board.Stalled());
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[4035]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_copy_the_broker_can_never_accept_stalls_the_partition_loudly_until_it_can()
    {
        var topic = Topic("invalid", 1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Bytes("not json") });
            await ProduceEnvelopesAsync(producer, topic, 0, "inv:", 5);
        }

        // INVALID_RECORD (87), e.g. a null key on a compacted dead-letter topic: every copy is refused.
        KafkaCluster.PushRequestErrors(0 /* Produce */, [.. Enumerable.Repeat(87, 1000)]);
        await using var node = await StartNodeAsync(TestNode.Kafka("k_inv", KafkaCluster.Bootstrap, group, topic));

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        using (var http = new HttpClient())
        {
            Assert.Equal(
                System.Net.HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri(node.AdminUrl + "/health/ready"))).StatusCode);
        }
        Assert.Null(Committed(KafkaCluster.Bootstrap, group, topic, 0));
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[4035]", StringComparison.Ordinal) && l.Contains("Offset=0", StringComparison.Ordinal));

        KafkaCluster.ClearRequestErrors(0);
        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 6,
            "offset committed once the copy was written", TimeSpan.FromSeconds(60));
        var received = StandIn.ReceivedFor("inv:p0").Select(Seq).ToArray();
        Assert.Equal(Enumerable.Range(0, 5).Select(i => (long)i), received);
    }
}
