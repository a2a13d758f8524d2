using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>K1: a committed offset past the end of the log (restored or translated offsets, a re-created topic).</summary>
public sealed class KafkaOffsetResetTests : IAsyncLifetime
{
    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create(brokers: 1);
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync()
    {
        await _standIn.DisposeAsync();
        _cluster.Dispose();
    }

    [Fact]
    public async Task Records_below_a_committed_offset_past_the_end_are_replayed_and_logged_not_dropped()
    {
        var topic = Unique("reset");
        _cluster.CreateTopic(topic, 1);
        var group = Unique("g");
        using var producer = Producer(_cluster.Bootstrap);
        await ProduceEnvelopesAsync(producer, topic, 0, "reset:", 20);
        using (var committer = Consumer(_cluster.Bootstrap, group))
        {
            committer.Commit([new TopicPartitionOffset(topic, 0, 1000)]);
        }

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Kafka("k_reset", _cluster.Bootstrap, group, topic)));
        await ProduceEnvelopesAsync(producer, topic, 0, "reset:", 10, startAt: 20);

        // librdkafka resets the out-of-range position to the earliest offset: Centrifugo then delivers from there.
        await Poll.UntilAsync(() => _standIn.ReceivedFor("reset:p0").Count >= 30, "every record delivered", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (long)i), _standIn.ReceivedFor("reset:p0").Select(Seq));
        Assert.Contains(node.Logs.Lines, l => l.Contains("[4050]", StringComparison.Ordinal) && l.Contains($"Topic={topic}", StringComparison.Ordinal));
    }
}
