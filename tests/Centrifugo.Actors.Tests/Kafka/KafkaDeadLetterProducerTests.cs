using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
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
        var (source, options) = SourceWithDeadLetterTopic(cluster, partitions: 3);
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

    [Fact]
    public async Task A_fatal_error_replaces_the_producer_and_the_retried_copy_is_written()
    {
        using var cluster = KafkaMockCluster.Create();
        var (source, options) = SourceWithDeadLetterTopic(cluster, partitions: 1);
        using var producer = new KafkaDeadLetterProducer("orders_consumer", options, NullLoggerFactory.Instance);
        await producer.ProduceAsync(new KafkaRecord(source, 0, 1, null, Bytes("first"), []), "bad", CancellationToken.None);

        // OUT_OF_ORDER_SEQUENCE_NUMBER (45): the idempotent producer can no longer vouch for its ordering.
        Assert.Equal(0, Native.rd_kafka_test_fatal_error(RawHandle(producer.CurrentHandle), 45, "injected by the test"));

        // librdkafka reports the fatal error through the error callback, which marks the producer; until then a copy
        // would still meet the old producer and fail (the caller retries it with backoff). The next copy replaces it.
        await WaitUntilAsync(() => producer.FatalPending, "the fatal error reported by librdkafka");
        await producer.ProduceAsync(new KafkaRecord(source, 0, 2, null, Bytes("second"), []), "bad", CancellationToken.None);

        Assert.Equal(1, producer.Replacements);
        var copies = ReadAll(cluster.Bootstrap, source + ".dead_letter", partitions: 1, expected: 2);
        Assert.Equal(["first", "second"], copies.Select(c => Text(c.Message.Value)));
    }

    /// <summary>A source topic and its default dead-letter topic (1 partition) on <paramref name="cluster"/>.</summary>
    private static (string Source, KafkaConsumerOptions Options) SourceWithDeadLetterTopic(KafkaMockCluster cluster, int partitions)
    {
        var source = Unique("src");
        cluster.CreateTopic(source, partitions);
        cluster.CreateTopic(source + ".dead_letter", 1);
        return (source, new KafkaConsumerOptions { Brokers = [cluster.Bootstrap], Topics = [source], ConsumerGroup = Unique("g") });
    }

    /// <summary>The rd_kafka_t* behind a Confluent.Kafka client (kept internal by Confluent.Kafka).</summary>
    private static IntPtr RawHandle(Handle handle)
    {
        var property = typeof(Handle).GetProperty("LibrdkafkaHandle", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka.Handle.LibrdkafkaHandle not found (Confluent.Kafka changed)");
        return ((System.Runtime.InteropServices.SafeHandle)property.GetValue(handle)!).DangerousGetHandle();
    }
}
