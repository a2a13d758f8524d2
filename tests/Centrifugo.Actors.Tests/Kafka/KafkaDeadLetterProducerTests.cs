using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

public sealed class KafkaDeadLetterProducerTests
{
    [Fact]
    public void Dead_letter_topic_defaults_to_the_source_topic_with_a_dead_letter_suffix()
    {
        var options = new KafkaConsumerOptions { Brokers = ["b"], Topics = ["t"], ConsumerGroup = "g" };

        Assert.Equal("orders.dead_letter", KafkaDeadLetterProducer.TopicFor(options, "orders"));
        Assert.Equal("dlq", KafkaDeadLetterProducer.TopicFor(options with { DeadLetterTopic = "dlq" }, "orders"));
    }

    [Fact]
    public async Task A_dead_lettered_record_keeps_key_value_and_headers_and_says_why_and_where_from()
    {
        using var cluster = KafkaMockCluster.Create();
        var source = Unique("src");
        cluster.CreateTopic(source, 3);
        cluster.CreateTopic(source + ".dead_letter", 1);
        var options = new KafkaConsumerOptions { Brokers = [cluster.Bootstrap], Topics = [source], ConsumerGroup = Unique("g") };
        var original = new KafkaRecord(source, 2, 41, Bytes("key-1"), Bytes("{\"bad\":"),
            [new("centrifugo-method", Bytes("publish")), new("trace", Bytes("abc"))]);

        using (var producer = new KafkaDeadLetterProducer("orders_consumer", options, NullLoggerFactory.Instance))
        {
            await producer.ProduceAsync(original, "invalid JSON", CancellationToken.None);
        }

        var copy = Assert.Single(ReadAll(cluster.Bootstrap, source + ".dead_letter", partitions: 1, expected: 1));
        Assert.Equal("key-1", Text(copy.Message.Key));
        Assert.Equal("{\"bad\":", Text(copy.Message.Value));
        var headers = copy.Message.Headers.Select(h => (h.Key, Encoding.UTF8.GetString(h.GetValueBytes()))).ToList();
        Assert.Equal(
            [
                ("centrifugo-method", "publish"),
                ("trace", "abc"),
                ("x-centrifugo-actors-reason", "invalid JSON"),
                ("x-centrifugo-actors-source-topic", source),
                ("x-centrifugo-actors-source-partition", "2"),
                ("x-centrifugo-actors-source-offset", "41"),
                ("x-centrifugo-actors-consumer", "orders_consumer"),
            ],
            headers);
    }
}
