using System.Net;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>K3/K4: a dead-letter copy that can never be written stalls loudly and redelivers nothing already delivered.</summary>
public sealed class KafkaDeadLetterFailureTests : IAsyncLifetime
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
    public async Task An_oversized_poison_record_stalls_the_partition_loudly_without_redelivering_the_commands_after_it()
    {
        var topic = Unique("oversize");
        _cluster.CreateTopic(topic, 1);
        _cluster.CreateTopic(topic + ".dead_letter", 1);
        var group = Unique("g");
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = _cluster.Bootstrap, MessageMaxBytes = 4_000_000, EnableIdempotence = true, Acks = Acks.All, LingerMs = 1,
               }).SetLogHandler((_, _) => { }).Build())
        {
            // Not JSON, 1.2 MB: dead-lettered, but the copy exceeds the producer's message.max.bytes (1,000,000).
            await producer.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = new byte[1_200_000] });
            await ProduceEnvelopesAsync(producer, topic, 0, "big:", 20);
        }

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Kafka("k_big", _cluster.Bootstrap, group, topic)));

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri(node.AdminUrl + "/health/ready"))).StatusCode);
        // The commands read in the poison's batch are delivered while its copy is retried (how many share its batch
        // depends on the fetch: none when the poison came alone); several retries later each of them was still
        // delivered exactly once, in order, and nothing after the poison is committed.
        var retries = node.Logs.Lines.Count(l => l.Contains("[4035]", StringComparison.Ordinal));
        await Poll.UntilAsync(() => node.Logs.Lines.Count(l => l.Contains("[4035]", StringComparison.Ordinal)) >= retries + 3, "copy retried", TimeSpan.FromSeconds(30));
        var received = _standIn.ReceivedFor("big:p0").Select(Seq).ToArray();
        Assert.Equal(Enumerable.Range(0, received.Length).Select(i => (long)i), received);
        Assert.Null(Committed(_cluster.Bootstrap, group, topic, 0));
        Assert.Contains(node.Logs.Lines, l => l.Contains("[4035]", StringComparison.Ordinal) && l.Contains($"Topic={topic}", StringComparison.Ordinal)
            && l.Contains("Offset=0", StringComparison.Ordinal));
    }
}
