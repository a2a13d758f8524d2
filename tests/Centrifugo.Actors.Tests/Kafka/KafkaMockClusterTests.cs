using Centrifugo.Actors.Testing.Kafka;
using Confluent.Kafka;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;

namespace Centrifugo.Actors.Tests.Kafka;

public sealed class KafkaMockClusterTests
{
    [Fact]
    public async Task Records_produced_to_the_in_process_mock_are_consumed_in_order_per_partition()
    {
        using var cluster = KafkaMockCluster.Create();
        var topic = Unique("roundtrip");
        cluster.CreateTopic(topic, partitions: 3);
        using (var producer = Producer(cluster.Bootstrap))
        {
            for (var p = 0; p < 3; p++)
            {
                await ProduceAsync(producer, topic, p, count: 100);
            }
        }

        var read = ReadAll(cluster.Bootstrap, topic, partitions: 3, expected: 300);

        Assert.Equal(300, read.Count);
        foreach (var partition in read.GroupBy(r => r.Partition.Value))
        {
            Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i}"), partition.Select(r => Text(r.Message.Value)));
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), partition.Select(r => r.Offset.Value));
        }
    }

    [Fact]
    public async Task A_broker_that_goes_down_and_up_keeps_its_data()
    {
        using var cluster = KafkaMockCluster.Create();
        var topic = Unique("downup");
        cluster.CreateTopic(topic, partitions: 1);
        cluster.SetPartitionLeader(topic, 0, brokerId: 2);
        using var producer = Producer(cluster.Bootstrap);
        await ProduceAsync(producer, topic, 0, count: 50);

        cluster.SetBrokerDown(2);
        // Proof that it is down: a probe with a short delivery timeout cannot write.
        using (var probe = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = cluster.Bootstrap, MessageTimeoutMs = 1500, EnableIdempotence = false, Acks = Acks.Leader,
               }).SetLogHandler((_, _) => { }).Build())
        {
            var e = await Assert.ThrowsAsync<ProduceException<byte[]?, byte[]?>>(() =>
                probe.ProduceAsync(new TopicPartition(topic, 0), new Message<byte[]?, byte[]?> { Value = Bytes("probe") }));
            Assert.Equal(ErrorCode.Local_MsgTimedOut, e.Error.Code);
        }

        cluster.SetBrokerUp(2);
        await ProduceAsync(producer, topic, 0, count: 50, startAt: 50);

        var read = ReadAll(cluster.Bootstrap, topic, partitions: 1, expected: 100);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"v{i}"), read.Select(r => Text(r.Message.Value)));
    }

    [Fact]
    public async Task Child_process_host_answers_control_lines_and_exits_when_stdin_closes()
    {
        await using var mock = await KafkaMockProcess.StartAsync(brokers: 2, topics: ["preset:2"]);
        var topic = Unique("child");

        Assert.Equal("OK", await mock.SendAsync($"create {topic} 2"));
        Assert.StartsWith("ERR", await mock.SendAsync("down 7"), StringComparison.Ordinal);
        Assert.StartsWith("ERR", await mock.SendAsync("frobnicate"), StringComparison.Ordinal);
        using (var producer = Producer(mock.Bootstrap))
        {
            await ProduceAsync(producer, topic, 1, count: 10);
        }

        Assert.Equal(10, ReadAll(mock.Bootstrap, topic, partitions: 2, expected: 10).Count);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await mock.CloseStdinAndWaitForExitAsync(timeout.Token);
        Assert.True(mock.HasExited);
        Assert.Equal(0, mock.ExitCode);
    }
}
