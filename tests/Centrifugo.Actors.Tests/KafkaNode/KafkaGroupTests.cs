using System.Collections.Concurrent;
using System.Diagnostics;
using Akka.Actor;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Confluent.Kafka;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using static Centrifugo.Actors.Tests.Kafka.KafkaTestSupport;
using static Centrifugo.Actors.Tests.KafkaNode.KafkaNodeSupport;

namespace Centrifugo.Actors.Tests.KafkaNode;

/// <summary>
/// Every node is a member of the consumer group and delivers what the group assigned to it: two deployments and a
/// foreign member split the partitions; a revoked partition commits before it moves, a lost one stops at once; a
/// freeze suspends delivery; entities run on the node their partition is assigned to.
/// </summary>
public sealed class KafkaGroupTests(ITestOutputHelper output) : IAsyncLifetime
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

    private static KafkaConsumer Kafka(
        string name, string bootstrap, string group, string topic, KafkaGroupProtocol protocol, TimeSpan? session = null)
    {
        var consumer = TestNode.Kafka(name, bootstrap, group, topic);
        return consumer with
        {
            Kafka = consumer.Kafka with
            {
                GroupProtocol = protocol,
                SessionTimeout = session ?? consumer.Kafka.SessionTimeout,
            },
        };
    }

    private static int PartitionOf(ReceivedCommand c) => int.Parse(c.Channels[0][(c.Channels[0].LastIndexOf('p') + 1)..]);

    /// <summary>Produces one record per partition per round until stopped; returns the number of rounds produced.</summary>
    private static Task<int> ProduceRoundsAsync(
        string bootstrap, string topic, int partitions, string prefix, CancellationToken stop) => Task.Run(async () =>
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

    /// <summary>The group's committed offsets, sampled until disposed: none may ever move backwards.</summary>
    private sealed class OffsetSampler : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;

        public OffsetSampler(string bootstrap, string group, string topic, int partitions)
        {
            _run = Task.Run(() =>
            {
                using var reader = Consumer(bootstrap, group);
                var last = new long[partitions];
                Array.Fill(last, -1);
                var all = Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p)).ToList();
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        foreach (var tpo in reader.Committed(all, TimeSpan.FromSeconds(5)))
                        {
                            var p = tpo.Partition.Value;
                            if (tpo.Offset.Value >= 0 && tpo.Offset.Value < last[p])
                            {
                                Regressions.Enqueue($"{topic}/{p}: {last[p]} -> {tpo.Offset.Value}");
                            }
                            last[p] = Math.Max(last[p], tpo.Offset.Value);
                        }
                        Interlocked.Increment(ref _samples);
                    }
                    catch (KafkaException)
                    {
                        // coordinator busy: sample again
                    }
                    _stop.Token.WaitHandle.WaitOne(100);
                }
            });
        }

        private int _samples;

        public int Samples => Volatile.Read(ref _samples);

        public ConcurrentQueue<string> Regressions { get; } = new();

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
        }
    }

    /// <summary>
    /// A plain librdkafka member of the group (as Centrifugo's own consumer would be): it polls until disposed, keeps
    /// its assignment, and with <c>consume</c> records the seq of every record and commits it.
    /// </summary>
    private sealed class PlainMember : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _run;

        public PlainMember(string bootstrap, string group, string topic, ConsumerConfig config, bool consume)
        {
            config.BootstrapServers = bootstrap;
            config.GroupId = group;
            config.EnableAutoCommit = false;
            config.AutoOffsetReset = AutoOffsetReset.Earliest;
            _run = Task.Run(() =>
            {
                using var consumer = new ConsumerBuilder<byte[]?, byte[]?>(config)
                    .SetPartitionsAssignedHandler((_, ps) => ps.ForEach(p => Assigned[p.Partition.Value] = true))
                    .SetPartitionsRevokedHandler((_, ps) => ps.ForEach(p => Assigned.TryRemove(p.Partition.Value, out var _)))
                    .SetLogHandler((_, _) => { })
                    .Build();
                consumer.Subscribe(topic);
                while (!_stop.IsCancellationRequested)
                {
                    if (consumer.Consume(TimeSpan.FromMilliseconds(50)) is { Message: { } message } result && consume)
                    {
                        Records.Enqueue((result.Partition.Value, System.Text.Json.JsonDocument.Parse(message.Value!).RootElement
                            .GetProperty("payload").GetProperty("data").GetProperty("seq").GetInt64()));
                        try
                        {
                            consumer.Commit(result);
                        }
                        catch (KafkaException)
                        {
                            // refused while the mock's classic group re-forms: committed with the next record
                        }
                    }
                }
                consumer.Close();
            });
        }

        public ConcurrentDictionary<int, bool> Assigned { get; } = new();

        public ConcurrentQueue<(int Partition, long Seq)> Records { get; } = new();

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
        }
    }

    [Theory]
    [InlineData("consumer")]
    [InlineData("classic")]
    public async Task Two_deployments_on_one_group_split_the_partitions_without_loss_or_offset_regression(string protocolName)
    {
        var protocol = protocolName == "consumer" ? KafkaGroupProtocol.Consumer : KafkaGroupProtocol.Classic;
        const int partitions = 6;
        var topic = Unique("two");
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
        var consumer = Kafka("k_two", _cluster.Bootstrap, group, topic, protocol);
        var sampler = new OffsetSampler(_cluster.Bootstrap, group, topic, partitions);

        using var stopProducing = new CancellationTokenSource();
        var producing = ProduceRoundsAsync(_cluster.Bootstrap, topic, partitions, "two:", stopProducing.Token);

        await using var a = await TestNode.StartAsync(TestNode.Options(standInA.Url, standInA.ApiKey, consumer), output);
        await Poll.UntilAsync(() => standInA.ReceivedCount >= 100, "deployment A delivering", TimeSpan.FromSeconds(60));
        Assert.Equal(partitions, a.Runtime.Kafka["k_two"].Hub.Assignment().Count);

        // A second, independent deployment (its own cluster) joins the same consumer group.
        var joinedAt = Stopwatch.StartNew();
        await using var b = await TestNode.StartAsync(TestNode.Options(standInB.Url, standInB.ApiKey, consumer), output);
        await Poll.UntilAsync(() =>
            {
                var ofA = a.Runtime.Kafka["k_two"].Hub.Assignment();
                var ofB = b.Runtime.Kafka["k_two"].Hub.Assignment();
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
        await sampler.DisposeAsync();

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
        output.WriteLine($"{protocol}: records {partitions * rounds}, delivered {all.Count}, duplicates {duplicates}, " +
                         $"split {split.TotalSeconds:F1} s after B started, owner switches per partition [{string.Join(",", switches)}], " +
                         $"offset samples {sampler.Samples}, regressions {sampler.Regressions.Count}");

        Assert.Empty(sampler.Regressions);
        Assert.True(sampler.Samples > 20, $"only {sampler.Samples} committed-offset samples");
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(all.Where(d => d.Partition == p).Select(d => d.Seq).ToList(), rounds);
        }
        // A partition changes owner at most once here (A → B when B joined), never back and forth.
        Assert.All(switches, s => Assert.InRange(s, 0, 1));
        Assert.Contains(switches, s => s == 1);
        if (protocol == KafkaGroupProtocol.Consumer)
        {
            // The revocation lets the batch in flight finish and commits before the partition moves: nothing twice.
            Assert.Equal(0, duplicates);
        }
        else
        {
            // The mock refuses commits while a classic group re-forms (a mock divergence): a moved partition may be
            // read again from its last commit, a partition that stayed delivers each record once.
            for (var p = 0; p < partitions; p++)
            {
                var ofPartition = all.Where(d => d.Partition == p).ToList();
                var duplicatesHere = ofPartition.Count - ofPartition.Select(d => d.Seq).Distinct().Count();
                Assert.True(
                    switches[p] == 1 || duplicatesHere == 0, $"partition {p} never changed owner yet has {duplicatesHere} duplicates");
            }
        }
    }

    [Fact]
    public async Task A_foreign_member_gets_its_share_and_when_it_leaves_its_partitions_continue_from_its_commits()
    {
        // Centrifugo's own consumer in the same group: a plain librdkafka consumer, classic protocol, cooperative-sticky.
        const int partitions = 6;
        var topic = Unique("foreign");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var session = TimeSpan.FromSeconds(3);
        var ours = new ConcurrentQueue<(int Partition, long Seq)>();
        var standIn = await StandInAsync(c => ours.Enqueue((PartitionOf(c), Seq(c))));
        var sampler = new OffsetSampler(_cluster.Bootstrap, group, topic, partitions);
        using var stopProducing = new CancellationTokenSource();
        var producing = ProduceRoundsAsync(_cluster.Bootstrap, topic, partitions, "f:", stopProducing.Token);

        var foreign = new PlainMember(_cluster.Bootstrap, group, topic, new ConsumerConfig
        {
            PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky,
            SessionTimeoutMs = (int)session.TotalMilliseconds,
            HeartbeatIntervalMs = 500,
        }, consume: true);
        var foreignAssigned = foreign.Assigned;
        var theirs = foreign.Records;
        await Poll.UntilAsync(() => !foreignAssigned.IsEmpty && theirs.Count >= 20,
            "the foreign member consuming", TimeSpan.FromSeconds(60));

        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            Kafka("k_foreign", _cluster.Bootstrap, group, topic, KafkaGroupProtocol.Classic, session)), output);
        var hub = node.Runtime.Kafka["k_foreign"].Hub;
        await Poll.UntilAsync(() =>
                hub.Assignment().Count > 0 && !foreignAssigned.IsEmpty && hub.Assignment().Count + foreignAssigned.Count == partitions,
            "the group split between the foreign member and our node", TimeSpan.FromSeconds(60));
        var shared = hub.Assignment().Select(p => p.Partition).ToHashSet();
        output.WriteLine($"ours: [{string.Join(",", shared.Order())}], foreign: [{string.Join(",", foreignAssigned.Keys.Order())}]");
        await Poll.UntilAsync(() => ours.Count >= 30, "our node delivering its share", TimeSpan.FromSeconds(60));

        // `partitions list`: ours run here, the foreign member's are standby (assigned outside this deployment).
        var listed = await Centrifugo.Actors.Hosting.ClusterStatus.PartitionsAsync(node.Services.GetRequiredService<ActorSystem>(),
            Akka.Hosting.ActorRegistry.For(node.Services.GetRequiredService<ActorSystem>())
                .Get<Centrifugo.Actors.Hosting.PartitionRegion>(),
            node.Runtime.Catalogs, TimeSpan.FromSeconds(3), CancellationToken.None);
        foreach (var status in listed)
        {
            PartitionEntityId.TryParseKafka(status.EntityId, out _, out _, out var p);
            if (shared.Contains(p))
            {
                Assert.True(status.State is PartitionState.Idle or PartitionState.Delivering, $"{status.EntityId}: {status.State}");
            }
            else
            {
                Assert.Equal(PartitionState.Standby, status.State);
            }
        }

        // The foreign member leaves: its partitions continue here from its committed offsets.
        await foreign.DisposeAsync();
        await Poll.UntilAsync(() => hub.Assignment().Count == partitions, "our node assigned every partition", TimeSpan.FromSeconds(60));
        await stopProducing.CancelAsync();
        var rounds = await producing;
        await Poll.UntilAsync(() =>
                ours.Concat(theirs).Select(d => d).Distinct().Count() == partitions * rounds,
            "every record handled by one of the members", TimeSpan.FromSeconds(60));
        await Poll.UntilAsync(() =>
                Enumerable.Range(0, partitions).All(p => KafkaNodeSupport.Committed(_cluster.Bootstrap, group, topic, p) == rounds),
            "every partition committed to its end", TimeSpan.FromSeconds(30));
        await sampler.DisposeAsync();

        var both = ours.Select(d => d).Intersect(theirs).Count();
        output.WriteLine($"records {partitions * rounds}: ours {ours.Count}, foreign {theirs.Count}, handled by both {both}");
        Assert.Empty(sampler.Regressions);
        // Only a hand-over may repeat records (the mock refuses commits while a classic group re-forms).
        var foreignPartitions = theirs.Select(d => d.Partition).ToHashSet();
        Assert.All(ours.Select(d => d).Intersect(theirs), d => Assert.Contains(d.Partition, foreignPartitions));
        for (var p = 0; p < partitions; p++)
        {
            var sequence = theirs.Where(d => d.Partition == p).Select(d => d.Seq)
                .Concat(ours.Where(d => d.Partition == p).Select(d => d.Seq))
                .Distinct().Order().ToList();
            Assert.Equal(Enumerable.Range(0, rounds).Select(i => (long)i), sequence);
        }
    }

    [Fact]
    public async Task A_member_the_group_drops_stops_delivering_commits_nothing_and_delivers_again_after_it_rejoins()
    {
        const int partitions = 2;
        var topic = Unique("lost");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        _cluster.SetGroupCoordinator(group, 1);
        var standIn = await StandInAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            Kafka("k_lost", _cluster.Bootstrap, group, topic, KafkaGroupProtocol.Classic)), output);
        using var stopProducing = new CancellationTokenSource();
        var producing = ProduceRoundsAsync(_cluster.Bootstrap, topic, partitions, "lost:", stopProducing.Token);
        await Poll.UntilAsync(() => standIn.ReceivedCount >= 40, "delivering", TimeSpan.FromSeconds(60));

        // The coordinator forgets the member: its next heartbeat is answered UNKNOWN_MEMBER_ID.
        _cluster.PushRequestErrors(12, 25, 25, 25); // Heartbeat
        await Poll.UntilAsync(() => node.Logs.Lines.Any(l => l.Contains("[4054]", StringComparison.Ordinal)),
            "the partitions reported lost", TimeSpan.FromSeconds(30));
        // The entities hear of it from their leases (a message each).
        await Poll.UntilAsync(() => node.Logs.Lines.Any(l => l.Contains("[4042]", StringComparison.Ordinal)),
            "the entities stopped delivering", TimeSpan.FromSeconds(10));
        _cluster.ClearRequestErrors(12);

        await Poll.UntilAsync(() => node.Runtime.Kafka["k_lost"].Hub.Assignment().Count == partitions,
            "assigned again after the rejoin", TimeSpan.FromSeconds(60));
        await stopProducing.CancelAsync();
        var rounds = await producing;
        await Poll.UntilAsync(() =>
                Enumerable.Range(0, partitions).All(p => standIn.ReceivedFor($"lost:p{p}").Select(Seq).Distinct().Count() == rounds),
            "everything delivered after the rejoin", TimeSpan.FromSeconds(60));
        for (var p = 0; p < partitions; p++)
        {
            AssertNoLossAndLastOccurrencesInOrder(standIn.ReceivedFor($"lost:p{p}").Select(Seq).ToList(), rounds);
        }
    }

    [Fact]
    [Trait(TestLane.Category, TestLane.Slow)]
    public async Task After_a_freeze_no_request_starts_until_the_group_could_have_dropped_the_member()
    {
        // One read of 100 records goes out as 10 requests of 10, each answered after 300 ms. A freeze of the process
        // while the first ones go out: no further request may start during the suspension, then all arrive in order.
        var topic = Unique("freeze");
        var group = Unique("g");
        _cluster.CreateTopic(topic, 1);
        var standIn = await StandInAsync();
        var kafka = Kafka("k_freeze", _cluster.Bootstrap, group, topic, KafkaGroupProtocol.Consumer);
        var options = TestNode.Options(standIn.Url, standIn.ApiKey,
            kafka with { Kafka = kafka.Kafka with { MaxPollRecords = 100 } }) is var o
            ? o with { Api = o.Api with { MaxBatchSize = 10, Timeout = TimeSpan.FromSeconds(10) } }
            : throw new InvalidOperationException();
        await using var node = await TestNode.StartAsync(options, output);
        await node.WaitForPartitionsAsync(1, TimeSpan.FromSeconds(60));
        var hub = node.Runtime.Kafka["k_freeze"].Hub;
        using var producer = Producer(_cluster.Bootstrap);
        standIn.ResponseDelay = TimeSpan.FromMilliseconds(300);
        await ProduceEnvelopesAsync(producer, topic, 0, "fz:", 100);
        await Poll.UntilAsync(() => standIn.ReceivedFor("fz:p0").Count >= 10, "the first requests out", TimeSpan.FromSeconds(60));

        // What the tick thread sees after the process was stopped for a few seconds: a tick that comes late.
        Assert.NotNull(
            hub.Freezes.Tick(Stopwatch.GetTimestamp() + (long)(hub.Settings.FreezeThreshold.TotalSeconds * Stopwatch.Frequency)));
        var atFreeze = standIn.ReceivedFor("fz:p0").Count;
        // The suspension lasts 2 heartbeats + 1 s (2 s here); this wait is shorter, it is the window observed.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var duringSuspension = standIn.ReceivedFor("fz:p0").Count;
        output.WriteLine("commands sent: " +
            $"{atFreeze} at the freeze, {duringSuspension} 1.5 s later (suspension {hub.Settings.SuspensionAfterFreeze.TotalSeconds} s)");
        Assert.InRange(duringSuspension, atFreeze, atFreeze + 10); // at most the request already in flight

        await Poll.UntilAsync(() => standIn.ReceivedFor("fz:p0").Select(Seq).Distinct().Count() == 100,
            "everything delivered after the suspension", TimeSpan.FromSeconds(60));
        AssertNoLossAndLastOccurrencesInOrder(standIn.ReceivedFor("fz:p0").Select(Seq).ToList(), 100);
    }

    [Fact]
    [Trait(TestLane.Category, TestLane.Slow)]
    public async Task A_stopping_node_leaves_the_group_and_the_other_member_takes_over_well_within_the_session_timeout()
    {
        const int partitions = 4;
        var topic = Unique("leave");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var standIn = await StandInAsync();
        var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            Kafka("k_leave", _cluster.Bootstrap, group, topic, KafkaGroupProtocol.Consumer)), output);
        await node.WaitForPartitionsAsync(partitions, TimeSpan.FromSeconds(60));

        var other = new PlainMember(
            _cluster.Bootstrap, group, topic, new ConsumerConfig { GroupProtocol = GroupProtocol.Consumer }, consume: false);
        var assigned = other.Assigned;
        await Poll.UntilAsync(() => !assigned.IsEmpty && assigned.Count < partitions,
            "the other member sharing the group", TimeSpan.FromSeconds(60));

        var stopping = Stopwatch.StartNew();
        await node.DisposeAsync();
        var stopped = stopping.Elapsed;
        await Poll.UntilAsync(() => assigned.Count == partitions, "the other member assigned every partition", TimeSpan.FromSeconds(30));
        var takenOver = stopping.Elapsed;
        await other.DisposeAsync();

        output.WriteLine($"node stopped in {stopped.TotalSeconds:F2} s; " +
            $"every partition with the other member {takenOver.TotalSeconds:F2} s after the stop began");
        Assert.Contains(node.Logs.Lines, l => l.Contains("[4014]", StringComparison.Ordinal));
        // A ghost member would hold its partitions for the session timeout (6 s on this mock).
        Assert.True(takenOver < TimeSpan.FromMilliseconds(KafkaMockCluster.ConsumerGroupSessionMs), $"taken over after {takenOver}");
    }

    [Fact]
    public async Task In_one_cluster_every_entity_runs_on_the_node_its_partition_is_assigned_to()
    {
        const int partitions = 6;
        var topic = Unique("place");
        var group = Unique("g");
        _cluster.CreateTopic(topic, partitions);
        var standIn = await StandInAsync();
        var consumer = Kafka("k_place", _cluster.Bootstrap, group, topic, KafkaGroupProtocol.Consumer);
        await using var first = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey, consumer), output);
        await first.WaitForPartitionsAsync(partitions, TimeSpan.FromSeconds(60));
        var seed = Akka.Cluster.Cluster.Get(first.Services.GetRequiredService<ActorSystem>()).SelfAddress.ToString();
        var options = TestNode.Options(standIn.Url, standIn.ApiKey, consumer);
        await using var second = await TestNode.StartAsync(options with { Cluster = options.Cluster with { SeedNodes = [seed] } }, output);

        // The group gives the second node its share; the shards follow the assignment (external allocation).
        bool Placed()
        {
            var byNode = new[] { first, second }.Select(n => (
                Assigned: n.Runtime.Kafka["k_place"].Hub.Assignment().Select(p => p.Partition).ToHashSet(),
                Running: n.Board.Snapshot()
                    .Where(s => s.Source == PartitionSource.Kafka && s.State is PartitionState.Idle or PartitionState.Delivering)
                    .Select(s => int.Parse(s.Partition[(s.Partition.LastIndexOf('/') + 1)..])).ToHashSet())).ToArray();
            return byNode.All(n => n.Assigned.Count > 0 && n.Assigned.SetEquals(n.Running))
                && byNode.Sum(n => n.Assigned.Count) == partitions;
        }
        await Poll.UntilAsync(Placed, "each node running exactly the partitions assigned to it", TimeSpan.FromSeconds(60));

        using var producer = Producer(_cluster.Bootstrap);
        await Task.WhenAll(Enumerable.Range(0, partitions).Select(p => ProduceEnvelopesAsync(producer, topic, p, "pl:", 20)));
        await Poll.UntilAsync(() =>
                Enumerable.Range(0, partitions).All(p => standIn.ReceivedFor($"pl:p{p}").Select(Seq).Distinct().Count() == 20),
            "every record delivered", TimeSpan.FromSeconds(60));
        Assert.True(Placed(), "placement changed while delivering");
    }
}
