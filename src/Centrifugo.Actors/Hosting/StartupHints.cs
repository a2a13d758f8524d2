using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// Start-up advice about settings that are valid but slow: a read larger than <c>api.max_batch_size</c> goes out as
/// several sequential <c>/batch</c> requests, which on a small machine costs measurable throughput
/// (docs/benchmarks.md). Logged once per consumer at Information level; nothing is changed.
/// </summary>
internal static class StartupHints
{
    /// <summary>(consumer, read size, the setting that sets it) for every enabled consumer whose read exceeds
    /// <paramref name="maxBatchSize"/>.</summary>
    public static IEnumerable<(string Consumer, int ReadSize, string Setting)> SplitReads(
        IEnumerable<ConsumerOptions> consumers, int maxBatchSize)
    {
        foreach (var consumer in consumers.Where(c => c.Enabled))
        {
            var (readSize, setting) = consumer switch
            {
                PostgresConsumer { Postgresql: var pg } => (pg.PartitionSelectLimit, "partition_select_limit"),
                KafkaConsumer { Kafka: var kafka } => (kafka.MaxPollRecords, "max_poll_records"),
                _ => (0, ""),
            };
            if (readSize > maxBatchSize)
            {
                yield return (consumer.Name, readSize, setting);
            }
        }
    }

    public static void Log(ILogger logger, NodeOptions options)
    {
        foreach (var (consumer, readSize, setting) in SplitReads(options.Consumers, options.Api.MaxBatchSize))
        {
            HostingLog.SplitReads(logger, consumer, setting, readSize, options.Api.MaxBatchSize,
                (readSize + options.Api.MaxBatchSize - 1) / options.Api.MaxBatchSize, Math.Min(readSize, 1000));
        }
    }
}
