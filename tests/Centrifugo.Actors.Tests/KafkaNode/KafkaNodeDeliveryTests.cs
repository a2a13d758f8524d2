using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>A whole node reading the real Kafka protocol (librdkafka's mock cluster) and delivering over real HTTP.</summary>
public sealed class KafkaNodeDeliveryTests(ITestOutputHelper output) : KafkaNodeTest(output, brokers: 3)
{
    private string Topic(int partitions) => Topic("node", partitions);

    [Fact]
    public async Task Delivers_every_record_in_order_per_partition_across_eight_partitions_under_load()
    {
        const int partitions = 8, perPartition = 2000;
        var topic = Topic(partitions);
        var group = Unique("g");
        await using var node = await StartNodeAsync(TestNode.Kafka("k_order", KafkaCluster.Bootstrap, group, topic));

        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await Task.WhenAll(
                Enumerable.Range(0, partitions).Select(p => ProduceEnvelopesAsync(producer, topic, p, "load:", perPartition)));
        }

        await StandIn.WaitForReceivedAsync(partitions * perPartition, TimeSpan.FromSeconds(120));
        for (var p = 0; p < partitions; p++)
        {
            Assert.Equal(Enumerable.Range(0, perPartition).Select(i => (long)i), StandIn.ReceivedFor($"load:p{p}").Select(Seq));
        }

        // Marks are committed in the background under consumer_group.
        await Poll.UntilAsync(
            () => Enumerable.Range(0, partitions).All(p => Committed(KafkaCluster.Bootstrap, group, topic, p) == perPartition),
            "every partition committed to its end", TimeSpan.FromSeconds(30));
        var statuses = node.Board.Snapshot().Where(s => s.Source == PartitionSource.Kafka).ToArray();
        Assert.Equal(partitions, statuses.Length);
        Assert.All(statuses, s => Assert.Equal(perPartition, s.Delivered));
        Assert.Contains(statuses, s => s.Partition == $"{topic}/7");
    }

    [Fact]
    public async Task A_restarted_node_resumes_from_the_committed_offsets_without_loss()
    {
        const int partitions = 8, half = 400;
        var topic = Topic(partitions);
        var group = Unique("g");
        var options = Options(TestNode.Kafka("k_restart", KafkaCluster.Bootstrap, group, topic));
        using var producer = Producer(KafkaCluster.Bootstrap);
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => ProduceEnvelopesAsync(producer, topic, p, "restart:", half)));

        await using (var first = await StartNodeAsync(options))
        {
            await StandIn.WaitForReceivedAsync(half * partitions / 2, TimeSpan.FromSeconds(60));
        }

        var afterFirst = StandIn.ReceivedCount;
        await Task.WhenAll(
            Enumerable.Range(0, partitions).Select(p => ProduceEnvelopesAsync(producer, topic, p, "restart:", half, startAt: half)));
        await using var second = await StartNodeAsync(options);

        await Poll.UntilAsync(
            () => Enumerable.Range(0, partitions).All(p => StandIn.ReceivedFor($"restart:p{p}").Select(Seq).Distinct().Count() == 2 * half),
            "every command delivered", TimeSpan.FromSeconds(60));
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(StandIn.ReceivedFor($"restart:p{p}").Select(Seq).ToArray(), 2 * half);
        }

        // The hand-off committed the first node's marks: the second node re-delivers (almost) nothing of them.
        Assert.InRange(StandIn.ReceivedCount - afterFirst, 2 * half * partitions - afterFirst,
            (2 * half * partitions) - afterFirst + (partitions * 200));
    }

    [Fact]
    public async Task Poison_records_go_to_the_dead_letter_topic_with_headers_and_the_offset_moves_on()
    {
        var topic = Topic(1);
        KafkaCluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            Message<byte[]?, byte[]?> Msg(string value, string? method = null, params (string Key, string Value)[] headers)
            {
                var h = new Headers();
                if (method is not null)
                {
                    h.Add("centrifugo-method", Bytes(method));
                }
                foreach (var (key, v) in headers)
                {
                    h.Add(key, Bytes(v));
                }
                return new Message<byte[]?, byte[]?> { Key = Bytes("key"), Value = Bytes(value), Headers = h };
            }

            var records = new[]
            {
                Msg(Encoding.UTF8.GetString(Envelope("ok:a", 1))),
                Msg("{not json", null, ("x-app", "kept")),                                   // malformed envelope
                Msg("""{"channel":"ok:a"}""", "presence"),                                   // read-only method
                Msg("""{"method":"explode","payload":{"channel":"ok:a"}}"""),               // unknown method
                Msg(Encoding.UTF8.GetString(Envelope("unknown:ns", 9))),                     // Centrifugo 102
                Msg("""{"channel":"ok:a","data":{"seq":2}}""", "publish"),                  // method header mode
            };
            foreach (var record in records)
            {
                await producer.ProduceAsync(new TopicPartition(topic, 0), record);
            }
        }

        await using var node = await StartNodeAsync(TestNode.Kafka("k_poison", KafkaCluster.Bootstrap, group, topic));

        await Poll.UntilAsync(() => Committed(KafkaCluster.Bootstrap, group, topic, 0) == 6,
            "offset committed past every record", TimeSpan.FromSeconds(30));
        Assert.Equal([1L, 2L], StandIn.ReceivedFor("ok:a").Select(Seq).ToArray());

        var dead = ReadAll(KafkaCluster.Bootstrap, topic + ".dead_letter", 1, 4);
        Assert.Equal(4, dead.Count);
        string H(ConsumeResult<byte[]?, byte[]?> r, string key) => Text(r.Message.Headers.GetLastBytes(key));
        Assert.Equal(["1", "2", "3", "4"], dead.Select(r => H(r, KafkaDeadLetterProducer.SourceOffsetHeader)));
        Assert.All(dead, r =>
        {
            Assert.Equal(topic, H(r, KafkaDeadLetterProducer.SourceTopicHeader));
            Assert.Equal("0", H(r, KafkaDeadLetterProducer.SourcePartitionHeader));
            Assert.Equal("k_poison", H(r, KafkaDeadLetterProducer.ConsumerHeader));
            Assert.Equal("key", Text(r.Message.Key));
        });
        Assert.Contains("malformed", H(dead[0], KafkaDeadLetterProducer.ReasonHeader), StringComparison.Ordinal);
        Assert.Equal("{not json", Text(dead[0].Message.Value));
        Assert.Equal("kept", H(dead[0], "x-app"));
        Assert.Contains("presence", H(dead[1], KafkaDeadLetterProducer.ReasonHeader), StringComparison.Ordinal);
        Assert.Equal("presence", H(dead[1], "centrifugo-method"));
        Assert.Contains("explode", H(dead[2], KafkaDeadLetterProducer.ReasonHeader), StringComparison.Ordinal);
        Assert.Contains("102", H(dead[3], KafkaDeadLetterProducer.ReasonHeader), StringComparison.Ordinal);

        // Logged with consumer, topic, partition and offset as structured values; the API key never.
        await node.Logs.WaitForAsync(l => l.Contains("Consumer=k_poison", StringComparison.Ordinal)
            && l.Contains($"Topic={topic}", StringComparison.Ordinal) && l.Contains("Partition=0", StringComparison.Ordinal)
            && l.Contains("Offset=2", StringComparison.Ordinal), "dead letter with consumer, topic, partition and offset");
        await Poll.UntilAsync(() => node.Board.Snapshot().Any(s => s.DeadLettered == 4 && s.Delivered == 2), "status counts");
        Assert.DoesNotContain(StandIn.ApiKey, node.Logs.All, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Envelope_method_header_and_publication_data_mode_records_are_all_delivered()
    {
        var commands = Topic(1);
        var publications = Topic(1);
        var pubConsumer = TestNode.Kafka("k_pub", KafkaCluster.Bootstrap, Unique("g"), publications);
        pubConsumer = pubConsumer with
        {
            Kafka = pubConsumer.Kafka with { PublicationDataMode = new PublicationDataModeOptions { Enabled = true } },
        };
        await using var node = await StartNodeAsync(
            TestNode.Kafka("k_cmd", KafkaCluster.Bootstrap, Unique("g"), commands), pubConsumer);

        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await producer.ProduceAsync(commands, new Message<byte[]?, byte[]?> { Value = Envelope("fmt:env", 1) });
            await producer.ProduceAsync(commands, new Message<byte[]?, byte[]?>
            {
                Value = Bytes("""{"channel":"fmt:hdr","data":{"seq":2}}"""),
                Headers = new Headers { { "centrifugo-method", Bytes("publish") } },
            });
            // Debezium-style envelope: the payload is a JSON string holding the request.
            await producer.ProduceAsync(commands, new Message<byte[]?, byte[]?>
            {
                Value = Bytes("""{"method":"publish","payload":"{\"channel\":\"fmt:str\",\"data\":{\"seq\":3}}"}"""),
            });
            await producer.ProduceAsync(publications, new Message<byte[]?, byte[]?>
            {
                Value = Bytes("""{"seq":4}"""),
                Headers = new Headers { { "centrifugo-channels", Bytes("fmt:pub") }, { "centrifugo-tag-kind", Bytes("x") } },
            });
            await producer.ProduceAsync(publications, new Message<byte[]?, byte[]?>
            {
                Value = Bytes("""{"seq":5}"""),
                Headers = new Headers { { "centrifugo-channels", Bytes("fmt:b1,fmt:b2") } },
            });
        }

        await StandIn.WaitForReceivedAsync(5, TimeSpan.FromSeconds(30));
        Assert.Equal([1L], StandIn.ReceivedFor("fmt:env").Select(Seq));
        Assert.Equal([2L], StandIn.ReceivedFor("fmt:hdr").Select(Seq));
        Assert.Equal([3L], StandIn.ReceivedFor("fmt:str").Select(Seq));
        var pub = Assert.Single(StandIn.ReceivedFor("fmt:pub"));
        Assert.Equal("publish", pub.Method);
        using (var doc = JsonDocument.Parse(pub.RequestJson))
        {
            Assert.Equal(4, doc.RootElement.GetProperty("data").GetProperty("seq").GetInt32());
            Assert.Equal("x", doc.RootElement.GetProperty("tags").GetProperty("kind").GetString());
        }
        var broadcast = Assert.Single(StandIn.ReceivedFor("fmt:b2"));
        Assert.Equal("broadcast", broadcast.Method);
        Assert.Equal(["fmt:b1", "fmt:b2"], broadcast.Channels);
    }
}
