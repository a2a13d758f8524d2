using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>
/// Base of the tests that run whole nodes on Kafka: a fresh librdkafka mock cluster and Centrifugo stand-in per test,
/// and nodes started on them whose log lines go to the test's output (shown when the test fails).
/// </summary>
public abstract class KafkaNodeTest(ITestOutputHelper output, int brokers = 1) : IAsyncLifetime
{
    private protected KafkaMockCluster KafkaCluster { get; } = KafkaMockCluster.Create(brokers);

    private protected CentrifugoStandIn StandIn { get; private set; } = null!;

    protected ITestOutputHelper Output => output;

    public async Task InitializeAsync() => StandIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync()
    {
        await StandIn.DisposeAsync();
        KafkaCluster.Dispose();
    }

    /// <summary>A new topic with a unique name.</summary>
    private protected string Topic(string prefix, int partitions)
    {
        var topic = Kafka.KafkaTestSupport.Unique(prefix);
        KafkaCluster.CreateTopic(topic, partitions);
        return topic;
    }

    private protected NodeOptions Options(params ConsumerOptions[] consumers) => TestNode.Options(StandIn.Url, StandIn.ApiKey, consumers);

    private protected Task<TestNode> StartNodeAsync(params ConsumerOptions[] consumers) => TestNode.StartAsync(Options(consumers), output);

    private protected Task<TestNode> StartNodeAsync(NodeOptions options) => TestNode.StartAsync(options, output);
}
