using Centrifugo.Actors.Testing.Kafka;

namespace Centrifugo.Actors.KafkaMock;

/// <summary>One stdin control line applied to the cluster; the answer is "OK" or "ERR reason".</summary>
internal static class ControlCommand
{
    public static string Execute(KafkaMockCluster cluster, string line)
    {
        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            switch (words)
            {
                case ["down", var id]:
                    cluster.SetBrokerDown(Int(id));
                    break;
                case ["up", var id]:
                    cluster.SetBrokerUp(Int(id));
                    break;
                case ["rtt", var id, var ms, ..] when words.Length == 3 || (words.Length == 4 && words[3] == "ms"):
                    cluster.SetRtt(Int(id), Int(ms.EndsWith("ms", StringComparison.Ordinal) ? ms[..^2] : ms));
                    break;
                case ["leader", var topic, var partition, var id]:
                    cluster.SetPartitionLeader(topic, Int(partition), Int(id));
                    break;
                case ["coord", "group", var group, var id]:
                    cluster.SetGroupCoordinator(group, Int(id));
                    break;
                case ["err", var apiKey, .. var codes] when codes.Length > 0:
                    cluster.PushRequestErrors(checked((short)Int(apiKey)), [.. codes.Select(Int)]);
                    break;
                case ["clear", var apiKey]:
                    cluster.ClearRequestErrors(checked((short)Int(apiKey)));
                    break;
                case ["create", var topic, var partitions]:
                    cluster.CreateTopic(topic, Int(partitions));
                    break;
                case ["create", var topic, var partitions, var rf]:
                    cluster.CreateTopic(topic, Int(partitions), Int(rf));
                    break;
                case ["delete", var topic]:
                    cluster.DeleteTopic(topic);
                    break;
                case ["controller", var id]:
                    cluster.SetControllerId(Int(id));
                    break;
                default:
                    return "ERR unknown command (try: down N, up N, rtt N ms, leader T P N, coord group G N, err ApiKey code..., " +
                        "clear ApiKey, create T parts [rf], delete T, controller N, quit)";
            }

            return "OK";
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException or EntryPointNotFoundException)
        {
            return "ERR " + e.Message;
        }
    }

    // Kafka error codes are negative for librdkafka-local errors (e.g. -195 _TRANSPORT), so allow them.
    private static int Int(string value) => MockHostOptions.ParseInt("argument", value, min: int.MinValue);
}
