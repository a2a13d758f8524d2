using System.Diagnostics;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Benchmarks.Kafka;

/// <summary>Read throughput of a bare Confluent.Kafka consumer vs KafkaConsumerHub + leases, same mock, same run.</summary>
internal sealed record KafkaReadFigures(int Messages, int Partitions, TimeSpan ProduceTime, TimeSpan BareConsumer, TimeSpan Hub)
{
    public double BarePerSecond => Messages / BareConsumer.TotalSeconds;

    public double HubPerSecond => Messages / Hub.TotalSeconds;
}

internal static class KafkaReadBench
{
    /// <summary>
    /// Produces <paramref name="messages"/> (100-byte values) round-robin into a fresh topic of an in-process mock,
    /// then reads them all once with a bare assign+Consume loop and once through a hub with one lease per partition.
    /// </summary>
    public static async Task<KafkaReadFigures> RunAsync(
        int messages = 200_000,
        int partitions = 8,
        int partitionQueueMaxSize = 0,
        CancellationToken cancellationToken = default)
    {
        using var cluster = KafkaMockCluster.Create(brokers: 3);
        const string topic = "bench";
        cluster.CreateTopic(topic, partitions);

        var produce = Stopwatch.StartNew();
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = cluster.Bootstrap, LingerMs = 5, EnableIdempotence = true, Acks = Acks.All,
               }).SetLogHandler((_, _) => { }).Build())
        {
            var value = new byte[100];
            for (var i = 0; i < messages; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                while (true)
                {
                    try
                    {
                        producer.Produce(new TopicPartition(topic, i % partitions), new Message<byte[]?, byte[]?> { Value = value });
                        break;
                    }
                    catch (ProduceException<byte[]?, byte[]?> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                    {
                        producer.Poll(TimeSpan.FromMilliseconds(10));
                    }
                }
            }

            producer.Flush(cancellationToken);
        }

        produce.Stop();

        var bare = Stopwatch.StartNew();
        using (var consumer = new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
               {
                   BootstrapServers = cluster.Bootstrap, GroupId = "bare", EnableAutoCommit = false, FetchWaitMaxMs = 500,
               }).SetLogHandler((_, _) => { }).Build())
        {
            consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
            var read = 0;
            while (read < messages)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (consumer.Consume(TimeSpan.FromMilliseconds(100)) is not null)
                {
                    read++;
                }
            }

            consumer.Close();
        }

        bare.Stop();

        var hubTime = Stopwatch.StartNew();
        var options = new KafkaConsumerOptions
        {
            Brokers = [cluster.Bootstrap], Topics = [topic], ConsumerGroup = "hub", PartitionQueueMaxSize = partitionQueueMaxSize,
        };
        await using (var hub = new KafkaConsumerHub("bench", options, NullLoggerFactory.Instance))
        {
            var leases = new List<KafkaPartitionLease>();
            for (var p = 0; p < partitions; p++)
            {
                leases.Add(await hub.AcquireAsync(topic, p, cancellationToken));
            }

            await Task.WhenAll(leases.Select(async lease =>
            {
                var expected = messages / partitions + (lease.Partition < messages % partitions ? 1 : 0);
                var read = 0;
                while (read < expected)
                {
                    using var batch = await lease.ReadBatchAsync(500, cancellationToken);
                    read += batch.Count;
                    lease.MarkProcessed(batch.LastOffset);
                }
            }));
            foreach (var lease in leases)
            {
                await lease.DisposeAsync();
            }
        }

        hubTime.Stop();
        return new KafkaReadFigures(messages, partitions, produce.Elapsed, bare.Elapsed, hubTime.Elapsed);
    }
}
