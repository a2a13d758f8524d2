using System.Text.Json;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Confluent.Kafka;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>Producing sample commands and reading what the stand-in received.</summary>
internal static class KafkaNodeSupport
{
    public static byte[] Envelope(string channel, long seq) =>
        JsonSerializer.SerializeToUtf8Bytes(new { method = "publish", payload = new { channel, data = new { seq } } });

    public static long Seq(ReceivedCommand c)
    {
        using var doc = JsonDocument.Parse(c.RequestJson);
        return doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
    }

    /// <summary>Envelope-mode publishes of seq startAt.. to channel "&lt;prefix&gt;p&lt;partition&gt;", produced to that partition in
    /// order.</summary>
    public static async Task ProduceEnvelopesAsync(
        IProducer<byte[]?, byte[]?> producer, string topic, int partition, string prefix, int count, int startAt = 0)
    {
        var acks = new List<Task>(count);
        for (var i = startAt; i < startAt + count; i++)
        {
            acks.Add(producer.ProduceAsync(new TopicPartition(topic, partition),
                new Message<byte[]?, byte[]?> { Value = Envelope($"{prefix}p{partition}", i) }));
        }

        await Task.WhenAll(acks);
    }

    /// <summary>No loss, and the last delivery of each command is in order (duplicates allowed for redelivered windows).</summary>
    public static void AssertNoLossAndLastOccurrencesInOrder(IReadOnlyList<long> received, int expected)
    {
        var lastOccurrence = received.Select((seq, index) => (seq, index)).GroupBy(x => x.seq)
            .Select(g => (seq: g.Key, last: g.Max(x => x.index))).OrderBy(x => x.last).Select(x => x.seq);
        Assert.Equal(Enumerable.Range(0, expected).Select(i => (long)i), lastOccurrence);
    }

    public static long? Committed(string bootstrap, string group, string topic, int partition)
    {
        using var consumer = Kafka.KafkaTestSupport.Consumer(bootstrap, group);
        var offset = consumer.Committed([new TopicPartition(topic, partition)], TimeSpan.FromSeconds(10)).Single().Offset;
        return offset.Value >= 0 ? offset.Value : null;
    }

    public static KafkaPartitionLease? Lease(Node.TestNode node, string consumer, string topic, int partition) =>
        node.Runtime.Kafka[consumer].Hub.Leases.FirstOrDefault(l => l.Topic == topic && l.Partition == partition && !l.IsClosed);
}
