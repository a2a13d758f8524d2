using System.Diagnostics;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>
/// Broker outages, a slow or failing Centrifugo, and start-up refusal, on a whole node. Broker faults are cluster-wide:
/// every test gets its own mock cluster (as in every <see cref="KafkaNodeTest"/>).
/// </summary>
public sealed class KafkaNodeFaultTests(ITestOutputHelper output) : KafkaNodeTest(output, brokers: 3)
{
    [Fact]
    [Trait(TestLane.Category, TestLane.Slow)]
    public async Task A_partition_leader_down_for_five_seconds_loses_nothing_and_stalls_only_its_partitions()
    {
        const int partitions = 4, before = 100, during = 200;
        var topic = Unique("outage");
        var group = Unique("g");
        KafkaCluster.CreateTopic(topic, partitions);
        // Partitions 0 and 1 are led by broker 2 (the one going down); 2 and 3 and the group by broker 1.
        for (var p = 0; p < partitions; p++)
        {
            KafkaCluster.SetPartitionLeader(topic, p, p < 2 ? 2 : 1);
        }
        KafkaCluster.SetGroupCoordinator(group, 1);
        await using var node = await StartNodeAsync(TestNode.Kafka("k_outage", KafkaCluster.Bootstrap, group, topic));
        using var producer = Producer(KafkaCluster.Bootstrap);
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => ProduceEnvelopesAsync(producer, topic, p, "outage:", before)));
        await StandIn.WaitForReceivedAsync(partitions * before, TimeSpan.FromSeconds(30));

        KafkaCluster.SetBrokerDown(2);
        var outage = Stopwatch.StartNew();
        var stalled = Task.WhenAll(
            Enumerable.Range(0, 2).Select(p => ProduceEnvelopesAsync(producer, topic, p, "outage:", during, startAt: before)));
        await Task.WhenAll(
            Enumerable.Range(2, 2).Select(p => ProduceEnvelopesAsync(producer, topic, p, "outage:", during, startAt: before)));
        // The healthy partitions keep being delivered while the other broker is down.
        await Poll.UntilAsync(
            () => Enumerable.Range(2, 2).All(p => StandIn.ReceivedFor($"outage:p{p}").Count == before + during),
            "healthy partitions delivered during the outage", TimeSpan.FromSeconds(30));
        Assert.True(outage.Elapsed < TimeSpan.FromSeconds(5), $"the healthy partitions took {outage.Elapsed} (outage still running?)");
        Assert.All(Enumerable.Range(0, 2), p => Assert.Equal(before, StandIn.ReceivedFor($"outage:p{p}").Count));

        // The scenario is a 5 s outage; this wait is its duration, not a synchronisation.
        await Task.Delay(TimeSpan.FromSeconds(5) - outage.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        KafkaCluster.SetBrokerUp(2);
        await stalled.WaitAsync(TimeSpan.FromSeconds(60));

        await Poll.UntilAsync(
            () => Enumerable.Range(0, partitions)
                .All(p => StandIn.ReceivedFor($"outage:p{p}").Select(Seq).Distinct().Count() == before + during),
            "everything delivered after the outage", TimeSpan.FromSeconds(60));
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(StandIn.ReceivedFor($"outage:p{p}").Select(Seq).ToArray(), before + during);
        }
    }

    [Fact]
    [Trait(TestLane.Category, TestLane.Slow)]
    public async Task A_slow_Centrifugo_stops_fetching_partitions_instead_of_buffering_without_bound()
    {
        const int queueMax = 40, total = 1500;
        var topic = Topic("slow", 2);
        var consumer = TestNode.Kafka("k_slow", KafkaCluster.Bootstrap, Unique("g"), topic);
        consumer = consumer with { Kafka = consumer.Kafka with { PartitionQueueMaxSize = queueMax, MaxPollRecords = 10 } };
        StandIn.Latency = TimeSpan.FromMilliseconds(100);
        await using var node = await StartNodeAsync(consumer);
        // Record batches of at most 10 (the mock serves one batch per partition per fetch): the bound below is the limit
        // plus the fetch that reached it.
        using (var producer = new ProducerBuilder<byte[]?, byte[]?>(new ProducerConfig
               {
                   BootstrapServers = KafkaCluster.Bootstrap, EnableIdempotence = true, Acks = Acks.All, LingerMs = 1,
                   BatchNumMessages = 10,
               }).SetLogHandler((_, _) => { }).Build())
        {
            await Task.WhenAll(Enumerable.Range(0, 2).Select(p => ProduceEnvelopesAsync(producer, topic, p, "slow:", total)));
        }

        var maxQueued = 0;
        var full = false;
        await Poll.UntilAsync(() =>
        {
            foreach (var lease in node.Runtime.Kafka["k_slow"].Hub.Leases)
            {
                maxQueued = Math.Max(maxQueued, lease.QueuedCount);
                full |= lease.QueuedCount >= queueMax;
            }
            return full && StandIn.ReceivedCount >= 200;
        }, "a partition queue at its limit while Centrifugo is slow", TimeSpan.FromSeconds(60));
        // Bounded by the limit plus the records of the fetch that reached it.
        Assert.InRange(maxQueued, 1, queueMax + 20);
        Assert.True(StandIn.ReceivedCount < 2 * total, "the test must observe the node while it is still behind");

        StandIn.Latency = TimeSpan.Zero;
        await StandIn.WaitForReceivedAsync(2 * total, TimeSpan.FromSeconds(60));
        for (var p = 0; p < 2; p++)
        {
            Assert.Equal(Enumerable.Range(0, total).Select(i => (long)i), StandIn.ReceivedFor($"slow:p{p}").Select(Seq));
        }
    }

    [Fact]
    public async Task A_gateway_answering_500_with_its_own_error_body_is_retried_and_nothing_is_dead_lettered()
    {
        // 7 failed requests: the window halves down to single commands, whose non-200 body is read.
        const int count = 40;
        var topic = Topic("gateway", 1);
        StandIn.FailNextRequests(7, 500, """{"code":500,"message":"Internal Server Error"}""");
        await using var node = await StartNodeAsync(TestNode.Kafka("k_gateway", KafkaCluster.Bootstrap, Unique("g"), topic));
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await ProduceEnvelopesAsync(producer, topic, 0, "gateway:", count);
        }

        await Poll.UntilAsync(() => StandIn.ReceivedFor("gateway:p0").Count == count, "every record delivered", TimeSpan.FromSeconds(60));
        Assert.Equal(7, StandIn.RequestsWithStatus(500));
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), StandIn.ReceivedFor("gateway:p0").Select(Seq));
        Assert.All(node.Board.Snapshot(), s => Assert.Equal(0, s.DeadLettered));
    }

    [Fact]
    public async Task A_record_that_keeps_failing_blocks_only_its_own_partition()
    {
        const int count = 300;
        var topic = Topic("stuck", 2);
        StandIn.FailChannel("stuck:p0", int.MaxValue);
        var consumer = TestNode.Kafka("k_stuck", KafkaCluster.Bootstrap, Unique("g"), topic);
        consumer = consumer with { Kafka = consumer.Kafka with { MaxPollRecords = 50 } };
        await using var node = await StartNodeAsync(consumer);
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            await Task.WhenAll(Enumerable.Range(0, 2).Select(p => ProduceEnvelopesAsync(producer, topic, p, "stuck:", count)));
        }

        await Poll.UntilAsync(() => StandIn.ReceivedFor("stuck:p1").Count == count,
            "the healthy partition delivered", TimeSpan.FromSeconds(30));
        Assert.Empty(StandIn.ReceivedFor("stuck:p0"));
        await Poll.UntilAsync(
            () => node.Board.Snapshot().Any(s => s.Partition == $"{topic}/0" && s.State == PartitionState.Retrying && s.Errors >= 3),
            "the stuck partition retrying with backoff");
        Assert.Empty(node.Board.Stalled());

        StandIn.FailChannel("stuck:p0", 0);
        await Poll.UntilAsync(() => StandIn.ReceivedFor("stuck:p0").Count == count,
            "the stuck partition catching up", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), StandIn.ReceivedFor("stuck:p0").Select(Seq));
    }

    [Fact]
    public async Task A_partition_stopped_while_it_waits_to_retry_a_failed_command_commits_nothing_past_that_command()
    {
        // Found by the Kafka chaos test: a hand-off during the backoff after a failed command ended that batch early,
        // and the entity's stream went on with the next batch, delivered it and marked its last offset, so the final
        // commit skipped the failed command and the rest of its batch (43 commands lost).
        var topic = Topic("stopretry", 1);
        var group = Unique("g");
        StandIn.FailChannel("stopretry:bad", int.MaxValue);
        var consumer = TestNode.Kafka("k_stopretry", KafkaCluster.Bootstrap, group, topic);
        consumer = consumer with { Kafka = consumer.Kafka with { MaxPollRecords = 10 } };
        using (var producer = Producer(KafkaCluster.Bootstrap))
        {
            // Offsets 0..99 in one partition; the command at offset 5 is for a channel Centrifugo keeps failing.
            await Task.WhenAll(Enumerable.Range(0, 100).Select(i => producer.ProduceAsync(new TopicPartition(topic, 0),
                new Message<byte[]?, byte[]?> { Value = Envelope(i == 5 ? "stopretry:bad" : "stopretry:p0", i) })));
        }

        var node = await StartNodeAsync(consumer);
        try
        {
            await Poll.UntilAsync(
                () => node.Board.Snapshot().Any(s => s.Partition == $"{topic}/0" && s.State == PartitionState.Retrying && s.Errors >= 3),
                "the partition retrying the failed command with backoff", TimeSpan.FromSeconds(30));
        }
        finally
        {
            // A graceful stop (as in a hand-off) while the partition waits to retry: its final commit.
            await node.DisposeAsync();
        }

        Assert.Equal(5L, Committed(KafkaCluster.Bootstrap, group, topic, 0));
        Assert.DoesNotContain(StandIn.ReceivedFor("stopretry:p0").Select(Seq), seq => seq >= 10);
    }

    [Fact]
    public async Task A_node_refuses_to_start_when_no_broker_answers_and_never_shows_the_sasl_password()
    {
        const string password = "s3cret-sasl-Pa55word";
        var consumer = TestNode.Kafka("k_down", "127.0.0.1:1", Unique("g"), "t");
        consumer = consumer with
        {
            Kafka = consumer.Kafka with
            {
                DialTimeout = TimeSpan.FromSeconds(1),
                SaslMechanism = "plain",
                SaslUser = "user",
                SaslPassword = password,
            },
        };
        var logs = new CapturingLoggerProvider(Output.WriteLine);

        var error = await Assert.ThrowsAsync<StartupException>(() => TestNode.StartAsync(Options(consumer), logs));

        Assert.Contains("k_down", error.Message, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(password, logs.All, StringComparison.Ordinal);
        Assert.DoesNotContain(StandIn.ApiKey, logs.All, StringComparison.Ordinal);
    }
}
