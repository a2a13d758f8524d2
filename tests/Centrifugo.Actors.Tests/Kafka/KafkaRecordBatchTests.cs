using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

/// <summary>
/// <see cref="KafkaRecordBatch"/>: the records of one read in one pooled buffer, read in place until the batch is
/// disposed, returned to the pool exactly once, never readable afterwards; copies (dead letters) keep the original bytes.
/// </summary>
public sealed class KafkaRecordBatchTests : IDisposable
{
    private static readonly KafkaSettings Fast = new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(200),
        CommittedLookupTimeout = TimeSpan.FromSeconds(2),
        MetadataTimeout = TimeSpan.FromSeconds(2),
    };

    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create();

    public void Dispose() => _cluster.Dispose();

    /// <summary>Offset 0: key, unicode value, duplicate and empty headers; 1: null key and value; 2: empty key and value.</summary>
    private async Task<string> ProduceSamplesAsync()
    {
        var topic = Unique("batch");
        _cluster.CreateTopic(topic, 1);
        using var producer = Producer(_cluster.Bootstrap);
        var headers = new Headers { { "h", Bytes("first") }, { "h", Bytes("second") }, { "empty", [] } };
        await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?>
        {
            Key = Bytes("key-0"),
            Value = Bytes("{\"channel\":\"ch\",\"data\":{\"text\":\"héllo \\\"q\\\" \\u2603 ☃\"}}"),
            Headers = headers,
        });
        await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Key = null, Value = null });
        await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Key = [], Value = [] });
        return topic;
    }

    [Fact]
    public async Task Records_are_read_in_place_until_the_batch_is_disposed_and_never_after()
    {
        var topic = await ProduceSamplesAsync();
        var options = new KafkaConsumerOptions
        {
            Brokers = [_cluster.Bootstrap], Topics = [topic], ConsumerGroup = Unique("g"), FetchMaxWait = TimeSpan.FromMilliseconds(50),
        };
        await using var hub = new KafkaConsumerHub("c1", options, NullLoggerFactory.Instance, Fast);
        await using var lease = await hub.AcquireAsync(topic, 0, CancellationToken.None);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Every batch stays alive (and readable) until all three records are in.
        var batches = new List<KafkaRecordBatch>();
        while (batches.Sum(b => b.Count) < 3)
        {
            var read = await lease.ReadBatchAsync(10, deadline.Token);
            Assert.True(read.Count > 0);
            batches.Add(read);
        }

        var records = batches.SelectMany(b => Enumerable.Range(0, b.Count).Select(i => (Batch: b, Index: i))).ToList();
        Assert.Equal([0L, 1L, 2L], records.Select(r => r.Batch.Offset(r.Index)));

        var (first, at) = records[0];
        Assert.Equal(topic, first.Topic);
        Assert.Equal(0, first.Partition);
        Assert.Equal("key-0", Encoding.UTF8.GetString(first.Key(at).Span));
        Assert.Equal(
            "{\"channel\":\"ch\",\"data\":{\"text\":\"héllo \\\"q\\\" \\u2603 ☃\"}}", Encoding.UTF8.GetString(first.Value(at).Span));
        Assert.Equal(
            [("h", "first"), ("h", "second"), ("empty", "")], first.Headers(at).Select(h => (h.Key, Encoding.UTF8.GetString(h.Value))));
        var value = first.Value(at); // held across the disposal below

        // The method header is found in place: first match wins, exact bytes; a null or empty value reads as empty.
        Assert.True(first.TryGetHeader(at, "h"u8, out var h));
        Assert.Equal("first", Encoding.UTF8.GetString(h.Span));
        Assert.True(first.TryGetHeader(at, "empty"u8, out var empty));
        Assert.True(empty.IsEmpty);
        Assert.False(first.TryGetHeader(at, "H"u8, out _));
        Assert.False(records[1].Batch.TryGetHeader(records[1].Index, "h"u8, out _));

        // Null and empty stay apart in the copies (a dead letter keeps a null key or value null).
        var nulls = records[1].Batch.ToRecord(records[1].Index);
        Assert.Null(nulls.Key);
        Assert.Null(nulls.Value);
        Assert.Empty(nulls.Headers);
        Assert.True(records[1].Batch.Value(records[1].Index).IsEmpty);
        var empties = records[2].Batch.ToRecord(records[2].Index);
        Assert.Empty(Assert.IsType<byte[]>(empties.Key));
        Assert.Empty(Assert.IsType<byte[]>(empties.Value));

        var copy = first.ToRecord(at);
        foreach (var batch in batches)
        {
            batch.Dispose();
            batch.Dispose(); // a second disposal does nothing
            Assert.True(batch.IsDisposed);
        }

        // Neither the batch nor memory handed out before can read the buffer once it went back to the pool.
        Assert.Throws<ObjectDisposedException>(() => first.Offset(at));
        Assert.Throws<ObjectDisposedException>(() => first.Value(at));
        Assert.Throws<ObjectDisposedException>(() => first.ToRecord(at));
        Assert.Throws<ObjectDisposedException>(() => first.TryGetHeader(at, "h"u8, out _));
        Assert.Throws<ObjectDisposedException>(() => h.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => value.Span.Length);
        Assert.False(MemoryMarshal.TryGetArray(value, out _));

        // The copy is the record's own: pool reuse after disposal does not touch it.
        var reused = ArrayPool<byte>.Shared.Rent(64);
        reused.AsSpan().Fill(0xFF);
        ArrayPool<byte>.Shared.Return(reused);
        Assert.Equal("key-0", Text(copy.Key));
        Assert.StartsWith("{\"channel\":\"ch\"", Text(copy.Value), StringComparison.Ordinal);
        Assert.Equal([("h", "first"), ("h", "second"), ("empty", "")], copy.Headers.Select(h => (h.Key, Text(h.Value))));
    }

    [Fact]
    public async Task The_buffer_is_rented_once_and_returned_exactly_once()
    {
        var topic = await ProduceSamplesAsync();
        var pool = new CountingPool();
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var batch = ReadNative(consumer, topic, 3, pool);

        Assert.Equal(3, batch.Count);
        Assert.Equal(1, pool.Rented);
        Assert.Equal(0, pool.Returned);
        Assert.Equal("key-0", Encoding.UTF8.GetString(batch.Key(0).Span));

        batch.Dispose();
        batch.Dispose();
        Assert.Equal(1, pool.Returned);
        Assert.Same(pool.LastRented, pool.LastReturned);
    }

    [Fact]
    public async Task A_dead_letter_copied_from_a_batch_keeps_the_original_bytes_after_the_batch_is_gone()
    {
        var topic = await ProduceSamplesAsync();
        _cluster.CreateTopic(topic + ".dead_letter", 1);
        var options = new KafkaConsumerOptions { Brokers = [_cluster.Bootstrap], Topics = [topic], ConsumerGroup = Unique("g") };
        using var consumer = Consumer(_cluster.Bootstrap, Unique("g"));
        var batch = ReadNative(consumer, topic, 3, ArrayPool<byte>.Shared);
        var copies = new[] { batch.ToRecord(0), batch.ToRecord(1) };
        batch.Dispose();
        // Whatever reuses the buffer now must not show in the dead letters.
        for (var i = 0; i < 4; i++)
        {
            var reused = ArrayPool<byte>.Shared.Rent(128);
            reused.AsSpan().Fill((byte)'X');
            ArrayPool<byte>.Shared.Return(reused);
        }

        using (var producer = new KafkaDeadLetterProducer("c1", options, NullLoggerFactory.Instance))
        {
            foreach (var copy in copies)
            {
                await producer.ProduceAsync(copy, "bad", CancellationToken.None);
            }
        }

        var dead = ReadAll(_cluster.Bootstrap, topic + ".dead_letter", partitions: 1, expected: 2);
        Assert.Equal("key-0", Text(dead[0].Message.Key));
        Assert.Equal("{\"channel\":\"ch\",\"data\":{\"text\":\"héllo \\\"q\\\" \\u2603 ☃\"}}", Text(dead[0].Message.Value));
        Assert.Equal(
            ["first", "second", ""], dead[0].Message.Headers.Where(h => h.Key is "h" or "empty").Select(h => Text(h.GetValueBytes())));
        Assert.Null(dead[1].Message.Key);
        Assert.Null(dead[1].Message.Value);
    }

    /// <summary>Reads <paramref name="count"/> records of partition 0 with librdkafka's batch consume and copies them into one
    /// batch.</summary>
    private static unsafe KafkaRecordBatch ReadNative(IConsumer<byte[]?, byte[]?> consumer, string topic, int count, ArrayPool<byte> pool)
    {
        var queue = Librdkafka.rd_kafka_queue_get_consumer(Librdkafka.NativeHandle(consumer.Handle));
        var slots = new Librdkafka.Message*[16];
        var read = 0;
        var valid = 0;
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var clock = Stopwatch.StartNew();
        try
        {
            fixed (Librdkafka.Message** buffer = slots)
            {
                while (valid < count)
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"read {valid} of {count} records");
                    var n = (int)Librdkafka.rd_kafka_consume_batch_queue(queue, 100, buffer + read, (nuint)(slots.Length - read));
                    for (var i = read; i < read + n; i++)
                    {
                        if (buffer[i]->Err != 0)
                        {
                            Librdkafka.rd_kafka_message_destroy(buffer[i]);
                            buffer[i] = null;
                        }
                        else
                        {
                            valid++;
                        }
                    }

                    read += n;
                }

                return KafkaRecordBatch.CopyOf(topic, 0, buffer, read, valid, pool);
            }
        }
        finally
        {
            for (var i = 0; i < read; i++)
            {
                if (slots[i] != null)
                {
                    Librdkafka.rd_kafka_message_destroy(slots[i]);
                }
            }

            Librdkafka.rd_kafka_queue_destroy(queue);
        }
    }

    private sealed class CountingPool : ArrayPool<byte>
    {
        public int Rented;
        public int Returned;
        public byte[]? LastRented;
        public byte[]? LastReturned;

        public override byte[] Rent(int minimumLength)
        {
            Rented++;
            return LastRented = new byte[minimumLength];
        }

        public override void Return(byte[] array, bool clearArray = false)
        {
            Returned++;
            LastReturned = array;
        }
    }
}
