using System.Globalization;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// Three real node processes on one Kafka topic (librdkafka's mock cluster) while a producer writes the whole time
/// and Centrifugo fails 1 command in 60 with error 100: kill -9 of the oldest node, SIGTERM of another, SIGSTOP of
/// a third past the downing time. The group's committed offsets are watched throughout by a separate client.
/// </summary>
[Trait(TestLane.Category, TestLane.Slow)]
[Collection(NodeProcessCollection.Name)]
public sealed class KafkaClusterChaosTests(ITestOutputHelper output)
{
    private const int Partitions = 12;
    private const double RecordsPerSecondPerPartition = 25;

    [Fact]
    public async Task Kill_sigterm_and_freeze_of_nodes_lose_nothing_keep_order_never_move_offsets_back_and_every_partition_delivers_again()
    {
        using var broker = KafkaMockCluster.Create(brokers: 3);
        var topic = $"chaos-{Guid.NewGuid():N}";
        var group = $"g-{Guid.NewGuid():N}";
        broker.CreateTopic(topic, Partitions);
        var recorder = new DeliveryRecorder();
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { RecordCommands = false, OnAccepted = recorder.OnAccepted });
        standIn.FailEvery(60);
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            KafkaConsumers = [new KafkaConsumerConfig("k_chaos", broker.Bootstrap, group, [topic], GroupProtocol: "consumer")],
            Customize = json => json["cluster"]!.AsObject().Remove("number_of_shards"),
        };
        var streamOfEntity = Enumerable.Range(0, Partitions)
            .ToDictionary(p => $"kafka:k_chaos:{topic}:{p}", p => $"kchaos:p{p}", StringComparer.Ordinal);

        using var offsets = new CommittedOffsetMonitor(broker.Bootstrap, group, topic, Partitions, TimeSpan.FromMilliseconds(200));
        await using var cluster = NodeCluster.Create(3, template);
        var chaos = new ClusterChaos(cluster, recorder, streamOfEntity, output.WriteLine);
        var load = KafkaLoad.Start(
            broker.Bootstrap, topic, Partitions, RecordsPerSecondPerPartition, "kchaos:", recorder, TimeSpan.FromMinutes(8));
        // Beside it, reported and not asserted: two nodes listing one partition, nodes disagreeing about the members.
        var failures = await ChaosRun.RunWatchedAsync(cluster, chaos, load, output);

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load: {load.Produced} records over {Partitions} partitions at {RecordsPerSecondPerPartition}/s each, " +
            $"{load.Errors} failed produce rounds; " +
            $"stand-in: {standIn.ReceivedCount} accepted, {standIn.PeriodicFailures} failed with error 100"));
        // Offset n holds seq n (one idempotent producer, nothing else in the topic): what is not committed is still waiting.
        Task<IReadOnlySet<long>> PendingAsync(string stream)
        {
            var p = int.Parse(stream["kchaos:p".Length..], CultureInfo.InvariantCulture);
            var committed = Math.Max(0, offsets.Highest[p]);
            var produced = recorder.ProducedCount(stream);
            return Task.FromResult<IReadOnlySet<long>>(
                Enumerable.Range(0, (int)Math.Max(0, produced - committed)).Select(i => committed + i).ToHashSet());
        }

        // The producers have stopped: a partition is done when its committed offset reached its end (the last commits
        // follow the last deliveries, and a batch's re-sent tail comes before its commit).
        var ends = Enumerable.Range(0, Partitions).Select(p => recorder.ProducedCount($"kchaos:p{p}")).ToArray();
        Task<bool> DrainedAsync() => Task.FromResult(offsets.Highest.Select((o, p) => o >= ends[p]).All(x => x));
        await ChaosRun.CheckDeliveriesAsync(recorder, chaos.Streams, PendingAsync, DrainedAsync, failures, output);
        if (load.Errors > 0)
        {
            failures.Add($"{load.Errors} produce rounds failed");
        }

        if (!await DrainedAsync())
        {
            failures.Add($"committed offsets not at the end: {string.Join(",", offsets.Highest)} vs {string.Join(",", ends)}");
        }

        var regressions = offsets.Regressions;
        output.WriteLine($"committed offsets: {offsets.Polls} polls, {offsets.Errors} failed, {regressions.Count} moves backwards");
        foreach (var r in regressions.Take(20))
        {
            output.WriteLine($"  partition {r.Partition}: {r.From} → {r.To} at {r.At:HH:mm:ss.fff}");
        }

        if (regressions.Count > 0)
        {
            failures.Add($"committed offsets moved backwards {regressions.Count} times");
        }

        if (failures.Count > 0)
        {
            output.WriteLine(cluster.Tails(40));
        }

        Assert.True(failures.Count == 0, "chaos checks failed:\n" + string.Join('\n', failures));
    }
}
