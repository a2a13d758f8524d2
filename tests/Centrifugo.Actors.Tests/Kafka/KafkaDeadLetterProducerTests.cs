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

    [Fact]
    public async Task A_record_as_large_as_a_topic_holds_by_default_is_copied_whole()
    {
        // Kafka's default max.message.bytes (1,048,588) is above librdkafka's default message.max.bytes (1,000,000).
        using var cluster = KafkaMockCluster.Create();
        var (source, options) = SourceWithDeadLetterTopic(cluster, partitions: 1);
        var value = new byte[1_048_000];
        Array.Fill(value, (byte)'x');

        using (var producer = new KafkaDeadLetterProducer("orders_consumer", options, NullLoggerFactory.Instance))
        {
            await producer.ProduceAsync(
                new KafkaRecord(source, 0, 7, Bytes("k"), value, [new("trace", Bytes("abc"))]), "invalid JSON", CancellationToken.None);
        }

        var copy = Assert.Single(ReadAll(cluster.Bootstrap, source + ".dead_letter", partitions: 1, expected: 1));
        Assert.Equal(value, copy.Message.Value);
        Assert.Equal("invalid JSON", Text(copy.Message.Headers.GetLastBytes(KafkaDeadLetterProducer.ReasonHeader)));
    }

    [Fact]
    public async Task A_copy_the_dead_letter_topic_refuses_for_its_size_is_replaced_by_a_reference_to_the_source_record()
    {
        using var cluster = KafkaMockCluster.Create();
        var (source, options) = SourceWithDeadLetterTopic(cluster, partitions: 1);
        using var producer = new KafkaDeadLetterProducer("orders_consumer", options, NullLoggerFactory.Instance);
        await producer.ProduceAsync(new KafkaRecord(source, 0, 1, null, Bytes("first"), []), "bad", CancellationToken.None);

        // MESSAGE_TOO_LARGE (10) from the broker: the dead-letter topic's max.message.bytes is below the record's size.
        cluster.PushRequestErrors(0 /* Produce */, 10);
        var value = new byte[5000];
        await producer.ProduceAsync(
            new KafkaRecord(source, 0, 2, Bytes("k"), value, [new("trace", Bytes("abc"))]), "invalid JSON", CancellationToken.None);

        var copies = ReadAll(cluster.Bootstrap, source + ".dead_letter", partitions: 1, expected: 2);
        Assert.Equal(2, copies.Count);
        var reference = copies[1].Message;
        Assert.Equal("k", Text(reference.Key));
        Assert.Equal(Array.Empty<byte>(), reference.Value);
        Assert.Null(reference.Headers.FirstOrDefault(h => h.Key == "trace"));
        Assert.Equal("2", Text(reference.Headers.GetLastBytes(KafkaDeadLetterProducer.SourceOffsetHeader)));
        Assert.Equal(source, Text(reference.Headers.GetLastBytes(KafkaDeadLetterProducer.SourceTopicHeader)));
        Assert.Equal("5009", Text(reference.Headers.GetLastBytes(KafkaDeadLetterProducer.OmittedHeader)));
        var reason = Text(reference.Headers.GetLastBytes(KafkaDeadLetterProducer.ReasonHeader));
        Assert.StartsWith("invalid JSON; ", reason, StringComparison.Ordinal);
        Assert.Contains("5009 bytes", reason, StringComparison.Ordinal);
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
        var property = typeof(Handle)
            .GetProperty("LibrdkafkaHandle", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            ?? throw new InvalidOperationException("Confluent.Kafka.Handle.LibrdkafkaHandle not found (Confluent.Kafka changed)");
        return ((System.Runtime.InteropServices.SafeHandle)property.GetValue(handle)!).DangerousGetHandle();
    }
}
