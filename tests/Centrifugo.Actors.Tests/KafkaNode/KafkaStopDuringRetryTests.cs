using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>
/// A stop (hand-off, SIGTERM) that ends a partition's retry backoff leaves the record being retried unfinished: the
/// entity must not go on to the records read after it, whose marks would commit past it (a lost command; seen in the
/// Kafka chaos test as "LOST" right after a SIGTERM).
/// </summary>
public sealed class KafkaStopDuringRetryTests(ITestOutputHelper output) : KafkaNodeTest(output)
{
    [Fact]
    public async Task A_stop_during_a_retry_commits_nothing_past_the_retried_record_and_delivers_nothing_read_after_it()
    {
        var topic = Topic("stopretry", 1);
        var group = Unique("g");
        StandIn.FailChannel("stuck:p0", 1_000_000); // offset 0 is retried with backoff until the node stops
        using var producer = Producer(KafkaCluster.Bootstrap);
        await ProduceEnvelopesAsync(producer, topic, 0, "stuck:", 1);

        var node = await StartNodeAsync(TestNode.Kafka("k_stop", KafkaCluster.Bootstrap, group, topic));
        try
        {
            await Poll.UntilAsync(() => node.Logs.Lines.Any(l => l.Contains("[4030]", StringComparison.Ordinal)), "offset 0 retried", TimeSpan.FromSeconds(30));
            // Records behind it reach the partition's queue while the entity waits to retry offset 0.
            await ProduceEnvelopesAsync(producer, topic, 0, "after:", 5, startAt: 1);
            await Poll.UntilAsync(() => Lease(node, "k_stop", topic, 0)?.QueuedCount >= 5, "the records behind it fetched", TimeSpan.FromSeconds(30));
        }
        finally
        {
            await node.DisposeAsync(); // ends the backoff: the entity stops
        }

        Assert.Empty(StandIn.ReceivedFor("after:p0"));
        Assert.True(Committed(KafkaCluster.Bootstrap, group, topic, 0) is null or 0, "nothing may be committed past offset 0, never delivered");
    }
}
