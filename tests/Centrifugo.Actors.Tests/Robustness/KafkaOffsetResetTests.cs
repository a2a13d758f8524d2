using Centrifugo.Actors.Tests.KafkaNode;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>K1: a committed offset past the end of the log (restored or translated offsets, a re-created topic).</summary>
public sealed class KafkaOffsetResetTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    [Fact]
    public async Task Records_below_a_committed_offset_past_the_end_are_replayed_and_logged_not_dropped()
    {
        var topic = Topic("reset", 1);
        var group = Unique("g");
        using var producer = Producer(KafkaCluster.Bootstrap);
        await ProduceEnvelopesAsync(producer, topic, 0, "reset:", 20);
        using (var committer = Consumer(KafkaCluster.Bootstrap, group))
        {
            committer.Commit([new TopicPartitionOffset(topic, 0, 1000)]);
        }

        await using var node = await StartNodeAsync(TestNode.Kafka("k_reset", KafkaCluster.Bootstrap, group, topic));
        await ProduceEnvelopesAsync(producer, topic, 0, "reset:", 10, startAt: 20);

        // librdkafka resets the out-of-range position to the earliest offset: Centrifugo then delivers from there.
        await Poll.UntilAsync(() => StandIn.ReceivedFor("reset:p0").Count >= 30, "every record delivered", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), StandIn.ReceivedFor("reset:p0").Select(Seq));
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[4050]", StringComparison.Ordinal) && l.Contains($"Topic={topic}", StringComparison.Ordinal));
    }
}
