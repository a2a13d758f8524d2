using System.Globalization;
using Akka.Cluster;
using Centrifugo.Actors.Partitions;
using Prometheus;

namespace Centrifugo.Actors.Diagnostics;

/// <summary>
/// Gauges computed at scrape time: partitions hosted by this node per consumer and by state, Kafka lag per hosted
/// partition, cluster members by status and unreachable members (as this node sees them), the build.
/// </summary>
internal static class NodeGauges
{
    private static readonly Gauge Hosted = Metrics.CreateGauge(
        "centrifugo_actors_partitions_hosted", "Partition entities running on this node.",
        new GaugeConfiguration { LabelNames = ["consumer_name"] });

    private static readonly Gauge ByState = Metrics.CreateGauge(
        "centrifugo_actors_partitions",
        "Partition entities on this node by state (idle, delivering, retrying, stalled, paused, starting, stopping).",
        new GaugeConfiguration { LabelNames = ["consumer_name", "state"] });

    private static readonly Gauge BuildInfo = Metrics.CreateGauge(
        "centrifugo_actors_build_info", "Always 1; the version of the node that serves this scrape.",
        new GaugeConfiguration { LabelNames = ["version"] });

    private static readonly string Version =
        typeof(NodeGauges).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "unknown";

    private static readonly Gauge KafkaLag = Metrics.CreateGauge(
        "centrifugo_actors_kafka_lag",
        "Records in a Kafka partition hosted by this node not processed yet (from the cached high watermark).",
        new GaugeConfiguration { LabelNames = ["consumer_name", "topic", "partition"] });

    private static readonly Gauge Members = Metrics.CreateGauge(
        "centrifugo_actors_cluster_members", "Cluster members by status, as this node sees them.",
        new GaugeConfiguration { LabelNames = ["status"] });

    private static readonly Gauge Unreachable = Metrics.CreateGauge(
        "centrifugo_actors_cluster_unreachable_members", "Members this node's failure detector marks unreachable.");

    private static readonly Lock Gate = new();
    private static HashSet<(string, string, string)> _lagSeries = [];

    public static void Update(Cluster cluster, PartitionStatusBoard board, IEnumerable<string> consumers)
    {
        lock (Gate)
        {
            var snapshot = board.Snapshot();
            BuildInfo.WithLabels(Version).Set(1);
            foreach (var consumer in consumers)
            {
                Hosted.WithLabels(consumer).Set(snapshot.Count(s => s.Consumer == consumer));
                foreach (var partitionState in Enum.GetValues<PartitionState>().Where(s => s != PartitionState.Unreachable))
                {
                    ByState.WithLabels(consumer, partitionState.ToString().ToLowerInvariant())
                        .Set(snapshot.Count(s => s.Consumer == consumer && s.State == partitionState));
                }
            }

            var lag = new HashSet<(string, string, string)>();
            foreach (var s in snapshot.Where(s => s.Source == PartitionSource.Kafka && s.Lag is not null))
            {
                PartitionEntityId.TryParseKafka(s.EntityId, out _, out var topic, out var number);
                var key = (s.Consumer, topic, number.ToString(CultureInfo.InvariantCulture));
                KafkaLag.WithLabels(key.Item1, key.Item2, key.Item3).Set(s.Lag!.Value);
                lag.Add(key);
            }
            foreach (var gone in _lagSeries.Except(lag))
            {
                KafkaLag.RemoveLabelled(gone.Item1, gone.Item2, gone.Item3);
            }
            _lagSeries = lag;

            var state = cluster.State;
            foreach (var status in Enum.GetValues<MemberStatus>())
            {
                Members.WithLabels(status.ToString()).Set(state.Members.Count(m => m.Status == status));
            }
            Unreachable.Set(state.Unreachable.Count);
        }
    }
}
