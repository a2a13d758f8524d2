using System.Text.Json;
using Centrifugo.Actors.Testing.StandIn;
using Confluent.Kafka;

namespace Centrifugo.Actors.Demo;

/// <summary>
/// Writes envelope-mode commands ({"method","payload"}) to a Kafka topic, keyed by partition so each channel stays in
/// one partition; every 251st message has an unsupported method and ends in the dead-letter topic.
/// </summary>
internal sealed class DemoKafkaProducer(string bootstrap, string topic, int partitions)
{
    private long _produced;
    private long _poison;

    public long Produced => Interlocked.Read(ref _produced);

    public long Poison => Interlocked.Read(ref _poison);

    public long Delivered(CentrifugoStandIn standIn) =>
        Enumerable.Range(0, partitions).Sum(p => (long)standIn.ReceivedFor($"kdemo:p{p}").Count);

    public async Task RunAsync(int ratePerSecond, CancellationToken cancellationToken)
    {
        using var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                EnableIdempotence = true,
                Acks = Acks.All,
                LingerMs = 5,
            })
            .SetLogHandler((_, _) => { })
            .Build();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        var perTick = Math.Max(1, ratePerSecond / 10);
        long seq = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var acks = new List<Task>(perTick);
                for (var i = 0; i < perTick; i++)
                {
                    seq++;
                    var partition = (int)(seq % partitions);
                    var poison = seq % 251 == 0;
                    var value = JsonSerializer.SerializeToUtf8Bytes(new
                    {
                        method = poison ? "presence" : "publish",
                        payload = new { channel = $"kdemo:p{partition}", data = new { seq } },
                    });
                    acks.Add(producer.ProduceAsync(
                        new TopicPartition(topic, partition), new Message<byte[]?, byte[]?> { Value = value }, CancellationToken.None));
                    if (poison)
                    {
                        Interlocked.Increment(ref _poison);
                    }
                }
                await Task.WhenAll(acks);
                Interlocked.Add(ref _produced, perTick);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Counts places where a channel received a lower sequence after a higher one.</summary>
    public int OrderViolations(CentrifugoStandIn standIn) => DemoOrder.Violations(standIn, "kdemo:p", partitions);
}
