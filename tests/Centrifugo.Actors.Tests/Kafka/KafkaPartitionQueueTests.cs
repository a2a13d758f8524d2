using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>The P/Invoke layer over a partition's own librdkafka queue, on a real Confluent.Kafka consumer and the mock.</summary>
public sealed class KafkaPartitionQueueTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create();

    public void Dispose() => _cluster.Dispose();

    private string Topic(int partitions)
    {
        var topic = Unique("pq");
        _cluster.CreateTopic(topic, partitions);
        return topic;
    }

    /// <summary>Takes up to <paramref name="max"/> messages: (offset, value) of records, errors as (-1, code).</summary>
    private static unsafe List<(long Offset, string Value)> Take(KafkaPartitionQueue queue, int max)
    {
        var slots = new Librdkafka.Message*[max];
        var taken = new List<(long, string)>();
        fixed (Librdkafka.Message** buffer = slots)
        {
            var count = queue.Read(buffer, max);
            for (var i = 0; i < count; i++)
            {
                var m = buffer[i];
                taken.Add(m->Err != 0
                    ? (-1, m->Err.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    : (m->Offset, Text(Librdkafka.Copy(m->Payload, m->Length))));
                Librdkafka.rd_kafka_message_destroy(m);
            }
        }
        return taken;
    }

    /// <summary>Reads <paramref name="count"/> records, waiting only on the queue's wake-ups (never polling on a timer).</summary>
    private static async Task<List<(long Offset, string Value)>> ReadAsync(KafkaPartitionQueue queue, int count)
    {
        using var deadline = new CancellationTokenSource(Patience);
        var read = new List<(long, string)>();
        while (read.Count < count)
        {
            var batch = Take(queue, count - read.Count);
            Assert.DoesNotContain(batch, m => m.Offset < 0);
            read.AddRange(batch);
            if (batch.Count == 0)
            {
                await queue.WaitAsync(deadline.Token);
            }
        }
        return read;
    }

    [Fact]
    public async Task A_detached_partition_gets_its_records_on_its_own_queue_and_the_others_stay_on_the_consumer_queue()
    {
        var topic = Topic(2);
        using (var producer = Producer(_cluster.Bootstrap))
        {
            await ProduceAsync(producer, topic, 0, 50);
            await ProduceAsync(producer, topic, 1, 5);
        }

        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        using var queue = KafkaPartitionQueue.Open(Librdkafka.NativeHandle(consumer.Handle), topic, 0);
        consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning), new TopicPartitionOffset(topic, 1, Offset.Beginning)]);

        var own = await ReadAsync(queue, 50);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => ((long)i, $"v{i}")), own);

        var shared = new List<ConsumeResult<byte[]?, byte[]?>>();
        while (shared.Count < 5)
        {
            shared.Add(consumer.Consume(Patience) ?? throw new TimeoutException("partition 1 did not arrive on the consumer queue"));
        }
        Assert.All(shared, r => Assert.Equal(1, r.Partition.Value));
        // Partition 0's records never reach the consumer queue.
        Assert.Null(consumer.Consume(TimeSpan.FromMilliseconds(300)));
        consumer.Close();
    }

    [Fact]
    public async Task A_reader_waiting_on_an_empty_queue_is_woken_by_the_next_record()
    {
        var topic = Topic(1);
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        using var queue = KafkaPartitionQueue.Open(Librdkafka.NativeHandle(consumer.Handle), topic, 0);
        consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning)]);
        Assert.Empty(Take(queue, 10));

        using var producer = Producer(_cluster.Bootstrap);
        for (var round = 0; round < 3; round++)
        {
            // Each time the queue is empty when the record lands: the callback must fire again every time.
            await ProduceAsync(producer, topic, 0, 1, startAt: round);
            Assert.Equal([((long)round, $"v{round}")], await ReadAsync(queue, 1));
            Assert.Empty(Take(queue, 10));
        }

        consumer.Close();
    }

    [Fact]
    public async Task Length_counts_what_waits_and_a_read_takes_at_most_what_was_asked()
    {
        var topic = Topic(1);
        using (var producer = Producer(_cluster.Bootstrap))
        {
            await ProduceAsync(producer, topic, 0, 20);
        }

        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        using var queue = KafkaPartitionQueue.Open(Librdkafka.NativeHandle(consumer.Handle), topic, 0);
        consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning)]);
        // Length counts librdkafka's ops: the records, plus the version barrier of the fetch start until a read skips it.
        await WaitUntilAsync(() => queue.Length >= 20, "the 20 records to be fetched into the queue", Patience);

        Assert.Equal(Enumerable.Range(0, 5).Select(i => (long)i), Take(queue, 5).Select(m => m.Offset));
        Assert.Equal(15, queue.Length);
        Assert.Equal(Enumerable.Range(5, 15).Select(i => (long)i), Take(queue, 100).Select(m => m.Offset));
        consumer.Close();
    }

    [Fact]
    public async Task Dispose_wakes_a_waiting_reader_drops_what_was_queued_and_is_idempotent()
    {
        var topic = Topic(1);
        using (var producer = Producer(_cluster.Bootstrap))
        {
            await ProduceAsync(producer, topic, 0, 10);
        }

        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var queue = KafkaPartitionQueue.Open(Librdkafka.NativeHandle(consumer.Handle), topic, 0);
        consumer.Assign([new TopicPartitionOffset(topic, 0, Offset.Beginning)]);
        await WaitUntilAsync(() => queue.Length >= 10, "the records to be fetched", Patience);
        Assert.Equal(10, Take(queue, 10).Count);
        // At most one earlier wake-up is stored; after it, a wait on the empty queue is pending.
        var waiting = queue.WaitAsync(CancellationToken.None);
        if (waiting.IsCompleted)
        {
            waiting = queue.WaitAsync(CancellationToken.None);
        }
        Assert.False(waiting.IsCompleted);

        consumer.Unassign();
        queue.Dispose();
        queue.Dispose();

        await waiting.WaitAsync(Patience);
        Assert.True(queue.IsDisposed);
        Assert.Empty(Take(queue, 10));
        Assert.Equal(0, queue.Length);
        Assert.True(queue.WaitAsync(CancellationToken.None).IsCompleted);
        consumer.Close();
    }
}
