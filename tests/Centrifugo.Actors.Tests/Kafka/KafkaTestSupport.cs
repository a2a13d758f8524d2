using System.Diagnostics;
using Confluent.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

internal static class KafkaTestSupport
{
    public static string Unique(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    public static Task WaitUntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        Poll.UntilAsync(condition, what, timeout ?? TimeSpan.FromSeconds(30));

    public static IProducer<byte[]?, byte[]?> Producer(string bootstrap, Action<Error>? onError = null) =>
        new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                EnableIdempotence = true,
                Acks = Acks.All,
                LingerMs = 1,
                AllowAutoCreateTopics = false,
            })
            .SetErrorHandler((_, e) => onError?.Invoke(e))
            .SetLogHandler((_, _) => { })
            .Build();

    public static IConsumer<byte[]?, byte[]?> Consumer(string bootstrap, string group) =>
        new ConsumerBuilder<byte[]?, byte[]?>(new ConsumerConfig
            {
                BootstrapServers = bootstrap,
                GroupId = group,
                EnableAutoCommit = false,
                AutoOffsetReset = AutoOffsetReset.Earliest,
            })
            .SetLogHandler((_, _) => { })
            .Build();

    public static async Task ProduceAsync(IProducer<byte[]?, byte[]?> producer, string topic, int partition, int count, int startAt = 0)
    {
        var deliveries = new List<Task>(count);
        for (var i = startAt; i < startAt + count; i++)
        {
            deliveries.Add(producer.ProduceAsync(
                new TopicPartition(topic, partition),
                new Message<byte[]?, byte[]?> { Key = Bytes($"k{i}"), Value = Bytes($"v{i}") }));
        }

        await Task.WhenAll(deliveries);
    }

    public static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    public static string Text(byte[]? b) => b is null ? "<null>" : System.Text.Encoding.UTF8.GetString(b);

    /// <summary>Reads every record of the given partitions from the beginning until <paramref name="expected"/> arrived.</summary>
    public static List<ConsumeResult<byte[]?, byte[]?>> ReadAll(string bootstrap, string topic, int partitions, int expected)
    {
        using var consumer = Consumer(bootstrap, Unique("reader"));
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var results = new List<ConsumeResult<byte[]?, byte[]?>>();
        var deadline = Stopwatch.StartNew();
        while (results.Count < expected && deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r)
            {
                results.Add(r);
            }
        }

        return results;
    }
}
