namespace Centrifugo.Actors.Testing.Kafka;

/// <summary>Hub use in tests: join the group (alone in it) and take a partition as an entity would.</summary>
internal static class KafkaHubTestExtensions
{
    /// <summary>Joins the group and attaches <paramref name="topic"/>/<paramref name="partition"/> once it is assigned here.</summary>
    public static async Task<Centrifugo.Actors.Kafka.KafkaPartitionLease> AcquireAsync(
        this Centrifugo.Actors.Kafka.KafkaConsumerHub hub, string topic, int partition, CancellationToken cancellationToken)
    {
        hub.Join();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{topic}/{partition} was not assigned to this hub, or stayed attached, for 60 s");
            }
            if (await hub.AttachAsync(topic, partition, cancellationToken) is { } lease)
            {
                return lease;
            }
            await Task.Delay(50, cancellationToken);
        }
    }
}
