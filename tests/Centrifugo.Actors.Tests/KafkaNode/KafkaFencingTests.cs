using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>
/// Stale owners of Kafka partitions are fenced: across deployments (two independent clusters on one consumer group)
/// and when an owner's delivery grant expires.
/// </summary>
public sealed class KafkaFencingTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly KafkaMockCluster _cluster = KafkaMockCluster.Create(brokers: 3);
    private readonly List<CentrifugoStandIn> _standIns = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var standIn in _standIns)
        {
            await standIn.DisposeAsync();
        }
        _cluster.Dispose();
    }

    private async Task<CentrifugoStandIn> StandInAsync(Action<ReceivedCommand>? onAccepted = null)
    {
        var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { OnAccepted = onAccepted });
        _standIns.Add(standIn);
        return standIn;
    }

    private void Dump(string label, TestNode node)
    {
        foreach (var line in node.Logs.Lines.Where(l => l.Contains("Kafka", StringComparison.Ordinal) && (l.Contains("[405", StringComparison.Ordinal)
                     || l.Contains("[406", StringComparison.Ordinal) || l.Contains("[404", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)
                     || l.StartsWith("Error", StringComparison.Ordinal))))
        {
            output.WriteLine($"{label}: {line}");
        }
    }

    /// <summary>Stands for a group member nobody can reach: swallows every message.</summary>
    private sealed class BlackHole : ReceiveActor
    {
        public BlackHole() => ReceiveAny(_ => { });
    }

    private static int PartitionOf(ReceivedCommand c) => int.Parse(c.Channels[0][(c.Channels[0].LastIndexOf('p') + 1)..]);

    private static async Task<IReadOnlyList<KafkaOwnedPartition>> OwnedAsync(TestNode node, string consumer)
    {
        try
        {
            return (await node.Runtime.Kafka[consumer].Member!.Ask<OwnedKafkaPartitions>(GetOwnedKafkaPartitions.Instance, TimeSpan.FromSeconds(2))).Partitions;
        }
        catch (AskTimeoutException)
        {
            return [];
        }
    }

    /// <summary>Produces one record per partition per round until stopped; returns the number of rounds produced.</summary>
    private static Task<int> ProduceRoundsAsync(string bootstrap, string topic, int partitions, string prefix, CancellationToken stop) => Task.Run(async () =>
    {
        using var producer = Producer(bootstrap);
        var round = 0;
        while (!stop.IsCancellationRequested)
        {
            await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => producer.ProduceAsync(new TopicPartition(topic, p),
                new Message<byte[]?, byte[]?> { Value = Envelope($"{prefix}p{p}", round) })));
            round++;
            // Load shaping (about 20 records per partition per second), not synchronisation.
            await Task.Delay(50, CancellationToken.None);
        }
        return round;
    });

    [Fact]
    public async Task Two_deployments_on_one_group_split_the_partitions_without_loss_or_offset_regression()
    {
        const int partitions = 6;
        var topic = Unique("fence");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var deliveries = new List<(string Deployment, int Partition, long Seq)>();
        void Record(string deployment, ReceivedCommand c)
        {
            lock (deliveries)
            {
                deliveries.Add((deployment, PartitionOf(c), Seq(c)));
            }
        }
        var standInA = await StandInAsync(c => Record("A", c));
        var standInB = await StandInAsync(c => Record("B", c));
        var consumer = TestNode.Kafka("k_two", _cluster.Bootstrap, group, topic);

        // Committed offsets, sampled throughout: none may ever move backwards.
        using var stopSampling = new CancellationTokenSource();
        var regressions = new ConcurrentQueue<string>();
        var samples = 0;
        var sampler = Task.Run(() =>
        {
            using var reader = Consumer(_cluster.Bootstrap, group);
            var last = new long[partitions];
            Array.Fill(last, -1);
            var all = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToList();
            while (!stopSampling.IsCancellationRequested)
            {
                try
                {
                    foreach (var tpo in reader.Committed(all, TimeSpan.FromSeconds(5)))
                    {
                        var p = tpo.Partition.Value;
                        if (tpo.Offset.Value >= 0 && tpo.Offset.Value < last[p])
                        {
                            regressions.Enqueue($"{topic}/{p}: {last[p]} -> {tpo.Offset.Value}");
                        }
                        last[p] = Math.Max(last[p], tpo.Offset.Value);
                    }
                    Interlocked.Increment(ref samples);
                }
                catch (KafkaException)
                {
                    // coordinator busy: sample again
                }
                stopSampling.Token.WaitHandle.WaitOne(100);
            }
        });

        using var stopProducing = new CancellationTokenSource();
        var producing = ProduceRoundsAsync(_cluster.Bootstrap, topic, partitions, "two:", stopProducing.Token);

        await using var a = await TestNode.StartAsync(TestNode.Options(standInA.Url, standInA.ApiKey, consumer), output);
        await Poll.UntilAsync(() => standInA.ReceivedCount >= 100, "deployment A delivering", TimeSpan.FromSeconds(60));
        Assert.Equal(partitions, (await OwnedAsync(a, "k_two")).Count);

        // A second, independent deployment (its own cluster) joins the same consumer group.
        var joinedAt = Stopwatch.StartNew();
        await using var b = await TestNode.StartAsync(TestNode.Options(standInB.Url, standInB.ApiKey, consumer), output);
        using var dump = new Finally(() => { Dump("A", a); Dump("B", b); });
        await Poll.UntilAsync(async () =>
            {
                var ofA = await OwnedAsync(a, "k_two");
                var ofB = await OwnedAsync(b, "k_two");
                return ofA.Count > 0 && ofB.Count > 0 && ofA.Count + ofB.Count == partitions && !ofA.Intersect(ofB).Any();
            },
            "the partitions split between the two deployments", TimeSpan.FromSeconds(60));
        var split = joinedAt.Elapsed;
        var bAtSplit = standInB.ReceivedCount;
        await Poll.UntilAsync(() => standInB.ReceivedCount >= bAtSplit + 100, "deployment B delivering", TimeSpan.FromSeconds(60));

        await stopProducing.CancelAsync();
        var rounds = await producing;
        await Poll.UntilAsync(() =>
            {
                lock (deliveries)
                {
                    return deliveries.Select(d => (d.Partition, d.Seq)).Distinct().Count() == partitions * rounds;
                }
            }, "every produced record delivered by one of the deployments", TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() =>
                Enumerable.Range(0, partitions).All(p => KafkaNodeSupport.Committed(_cluster.Bootstrap, group, topic, p) == rounds),
            "every partition committed to its end", TimeSpan.FromSeconds(30));
        await stopSampling.CancelAsync();
        await sampler;

        List<(string Deployment, int Partition, long Seq)> all;
        lock (deliveries)
        {
            all = [.. deliveries];
        }
        var duplicates = all.Count - all.Select(d => (d.Partition, d.Seq)).Distinct().Count();
        var switches = Enumerable.Range(0, partitions).Select(p =>
        {
            var owners = all.Where(d => d.Partition == p).Select(d => d.Deployment).ToList();
            return owners.Zip(owners.Skip(1)).Count(x => x.First != x.Second);
        }).ToArray();
        output.WriteLine($"records {partitions * rounds}, delivered {all.Count}, duplicates {duplicates}, split {split.TotalSeconds:F1} s after B started, " +
                         $"owner switches per partition [{string.Join(",", switches)}], offset samples {samples}, regressions {regressions.Count}");

        Assert.Empty(regressions);
        Assert.True(samples > 20, $"only {samples} committed-offset samples");
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(all.Where(d => d.Partition == p).Select(d => d.Seq).ToList(), rounds);
        }
        // One deployment at a time: a partition changes owner at most once here (A → B when B joined), never back and forth.
        Assert.All(switches, s => Assert.InRange(s, 0, 1));
        Assert.Contains(switches, s => s == 1);
        // Duplicates come only from a hand-over: a partition that stayed with its first owner delivered each record once.
        // (A moved partition's final commit may be refused while the mock group re-forms; the revocation does not wait
        // past one grant TTL for it, so the new owner re-reads from the last commit that landed.)
        for (var p = 0; p < partitions; p++)
        {
            var ofPartition = all.Where(d => d.Partition == p).ToList();
            var duplicatesHere = ofPartition.Count - ofPartition.Select(d => d.Seq).Distinct().Count();
            Assert.True(switches[p] == 1 || duplicatesHere == 0, $"partition {p} never changed owner yet has {duplicatesHere} duplicates");
        }
    }

    [Fact]
    public async Task An_owner_whose_grant_lapses_in_the_middle_of_a_batch_sends_none_of_its_later_requests()
    {
        // One read of 100 records goes out as 10 requests of 10; Centrifugo takes 2 s per request. The member becomes
        // unreachable while the first request is in flight: the grant (3 s) lapses during the second request, and no
        // request may start after that, since the member may already have granted the partition to another owner.
        var topic = Unique("midbatch");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 1);
        var standIn = await StandInAsync();
        var kafka = TestNode.Kafka("k_mid", _cluster.Bootstrap, group, topic);
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, kafka with { Kafka = kafka.Kafka! with { MaxPollRecords = 100 } }) is var o
            ? o with { Api = o.Api with { MaxBatchSize = 10, Timeout = TimeSpan.FromSeconds(10) } }
            : throw new InvalidOperationException();
        await using var node = await TestNode.StartAsync(options, output);
        using var producer = Producer(_cluster.Bootstrap);
        await ProduceEnvelopesAsync(producer, topic, 0, "warm:", 5);
        await Poll.UntilAsync(() => standIn.ReceivedFor("warm:p0").Count >= 5, "the owner delivering under its grant", TimeSpan.FromSeconds(60));

        var runtime = node.Runtime.Kafka["k_mid"];
        var system = (ActorSystem)node.Services.GetService(typeof(ActorSystem))!;
        standIn.ResponseDelay = TimeSpan.FromSeconds(2);
        await ProduceEnvelopesAsync(producer, topic, 0, "mid:", 100);
        await Poll.UntilAsync(() => standIn.ReceivedFor("mid:p0").Count >= 10, "the first request in flight", TimeSpan.FromSeconds(60));
        runtime.Member = system.ActorOf(Props.Create(() => new BlackHole()), "unreachable-member-mid");
        using var dump = new Finally(() => Dump("node", node));
        await Poll.UntilAsync(() => node.Logs.Lines.Any(l => l.Contains("[4060]", StringComparison.Ordinal)),
            "the owner saw its grant lapse", TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() => node.Board.Snapshot().Where(s => s.Source == "kafka").All(s => s.State == PartitionState.Starting),
            "the owner stopped", TimeSpan.FromSeconds(60));

        var sent = standIn.ReceivedFor("mid:p0").Count;
        output.WriteLine($"commands of the 100 sent after the member became unreachable: {sent}");
        // Requests start at 0, 2, 4 s…; the grant ends at most 3 s after the last renewal, which came at the latest when
        // the member was cut off (just after the first request): the first two requests went, no third.
        Assert.InRange(sent, 10, 20);
    }

    [Fact]
    public async Task An_owner_whose_grant_expires_stops_delivering_and_nothing_is_lost()
    {
        const int partitions = 2;
        var topic = Unique("lapse");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var standIn = await StandInAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey, TestNode.Kafka("k_lapse", _cluster.Bootstrap, group, topic)), output);
        using var stopProducing = new CancellationTokenSource();
        var producing = ProduceRoundsAsync(_cluster.Bootstrap, topic, partitions, "lapse:", stopProducing.Token);
        await Poll.UntilAsync(() => standIn.ReceivedCount >= 50, "delivering", TimeSpan.FromSeconds(60));

        // The group member becomes unreachable for the entities: renewals go nowhere, grants run out.
        var runtime = node.Runtime.Kafka["k_lapse"];
        var member = runtime.Member!;
        var cut = Stopwatch.StartNew();
        using var dump = new Finally(() => Dump("node", node));
        var system = (ActorSystem)node.Services.GetService(typeof(ActorSystem))!;
        runtime.Member = system.ActorOf(Props.Create(() => new BlackHole()), "unreachable-member");
        await Poll.UntilAsync(() => node.Logs.Lines.Count(l => l.Contains("[4060]", StringComparison.Ordinal)) >= partitions,
            "both owners saw their grant lapse", TimeSpan.FromSeconds(30));
        // Stopped owners are restarted by their shard (it remembers its entities) and then wait for a grant they cannot
        // get: no owner holds a lease any more, each is absent or Starting.
        await Poll.UntilAsync(() => node.Board.Snapshot().Where(s => s.Source == "kafka").All(s => s.State == PartitionState.Starting),
            "both owners stopped", TimeSpan.FromSeconds(30));
        var stoppedAfter = cut.Elapsed;
        var atStop = standIn.ReceivedCount;

        // Records keep arriving in Kafka, nobody delivers them while no grant can be had.
        using (var probe = Producer(_cluster.Bootstrap))
        {
            await ProduceEnvelopesAsync(probe, topic, 0, "probe:", 50);
        }
        Assert.All(node.Board.Snapshot().Where(s => s.Source == "kafka"), s => Assert.Equal(PartitionState.Starting, s.State));
        Assert.Equal(atStop, standIn.ReceivedCount);
        // A lapsed grant is the fence doing its job: the pass says so (4060) and ends the partition's stream, instead of
        // being logged as an unexpected error (4034) and retried with a growing backoff until the renewal noticed.
        Assert.DoesNotContain(node.Logs.Lines, l => l.Contains("[4034]", StringComparison.Ordinal));
        output.WriteLine($"owners stopped {stoppedAfter.TotalSeconds:F1} s after the member became unreachable (grant ttl {runtime.MemberSettings.GrantTtl.TotalSeconds} s)");
        Assert.True(stoppedAfter < runtime.MemberSettings.GrantTtl + runtime.MemberSettings.RenewInterval + TimeSpan.FromSeconds(10),
            $"owners stopped only after {stoppedAfter}");

        // Reachable again: delivery resumes from the committed offsets, nothing lost.
        runtime.Member = member;
        await stopProducing.CancelAsync();
        var rounds = await producing;
        await Poll.UntilAsync(() => Enumerable.Range(0, partitions).All(p =>
                standIn.ReceivedFor($"lapse:p{p}").Select(Seq).Distinct().Count() == rounds) && standIn.ReceivedFor("probe:p0").Select(Seq).Distinct().Count() == 50,
            "everything delivered after the member is back", TimeSpan.FromSeconds(60));
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(standIn.ReceivedFor($"lapse:p{p}").Select(Seq).ToList(), rounds);
        }
    }

    [Fact]
    public async Task A_stopping_node_has_left_the_consumer_group_when_it_is_done()
    {
        // The member singleton stops during the cluster exit; leaving the group takes a round trip to the coordinator
        // after that. A process that exits first leaves a ghost member the group waits a whole session timeout for
        // before the member's next node gets the partitions.
        var topic = Unique("leave");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 2);
        var standIn = await StandInAsync();
        var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey, TestNode.Kafka("k_leave", _cluster.Bootstrap, group, topic)), output);
        await Poll.UntilAsync(() => node.Logs.Lines.Any(l => l.Contains("[4051]", StringComparison.Ordinal)), "the group assigned the partitions", TimeSpan.FromSeconds(30));

        await node.DisposeAsync();

        Assert.Contains(node.Logs.Lines, l => l.Contains("[4059]", StringComparison.Ordinal));
    }
}

internal sealed class Finally(Action action) : IDisposable
{
    public void Dispose() => action();
}
