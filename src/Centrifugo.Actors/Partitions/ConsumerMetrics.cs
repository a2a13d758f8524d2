using Prometheus;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The partition entities' Prometheus counters, per consumer, kept by <see cref="PartitionProgress"/>. The first two
/// keep Centrifugo's own names and labels (Centrifugo's <c>centrifugo_consumers_*</c> metrics) so existing dashboards keep working; the
/// rest are ours (Centrifugo has no dead-letter or stall metrics).
/// </summary>
internal static class ConsumerMetrics
{
    public static readonly Counter MessagesProcessed = Metrics.CreateCounter(
        "centrifugo_consumers_messages_processed_total",
        "Messages delivered to Centrifugo or set aside (dead-lettered) by consumers.",
        new CounterConfiguration { LabelNames = ["consumer_name"] });

    public static readonly Counter Errors = Metrics.CreateCounter(
        "centrifugo_consumers_errors_total",
        "Failed processing attempts (each is retried with backoff).",
        new CounterConfiguration { LabelNames = ["consumer_name"] });

    public static readonly Counter DeadLettered = Metrics.CreateCounter(
        "centrifugo_actors_dead_lettered_total",
        "Messages moved to the dead-letter table/topic (malformed, unsupported method, permanently rejected).",
        new CounterConfiguration { LabelNames = ["consumer_name"] });

    public static readonly Gauge StalledPartitions = Metrics.CreateGauge(
        "centrifugo_actors_stalled_partitions",
        "Partitions on this node stalled by a configuration fault (401/404/405 from Centrifugo).",
        new GaugeConfiguration { LabelNames = ["consumer_name"] });

    public static void Initialise(string consumer)
    {
        MessagesProcessed.WithLabels(consumer);
        Errors.WithLabels(consumer);
        DeadLettered.WithLabels(consumer);
        StalledPartitions.WithLabels(consumer);
    }
}
