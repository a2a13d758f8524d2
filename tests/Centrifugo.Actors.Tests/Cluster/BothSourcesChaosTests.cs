using System.Globalization;
using Centrifugo.Actors.Testing.Kafka;
using Centrifugo.Actors.Testing.Load;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Processes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Cluster;

/// <summary>
/// Both sources in one cluster of three node processes (an outbox with NOTIFY and a Kafka topic on the KIP-848 group
/// protocol) while producers write to both and Centrifugo fails 1 command in 60 with error 100: kill -9 of the
/// oldest node, SIGTERM of another, SIGSTOP of a third past the downing time.
/// </summary>
[Trait(TestLane.Category, TestLane.Slow)]
[Collection(NodeProcessCollection.Name)]
public sealed class BothSourcesChaosTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const int OutboxPartitions = 12;
    private const int KafkaPartitions = 6;
    private const double PerPartitionPerSecond = 20;

    [Fact]
    public async Task Kill_sigterm_and_freeze_lose_nothing_keep_order_and_every_partition_of_both_sources_delivers_again()
    {
        var recorder = new DeliveryRecorder();
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { RecordCommands = false, OnAccepted = recorder.OnAccepted });
        standIn.FailEvery(60);
        var name = PostgresFixture.UniqueName("outbox");
        var channel = PostgresFixture.UniqueName("both");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name, notifyChannel: channel);
        using var broker = KafkaMockCluster.Create(brokers: 3);
        var topic = $"both-{Guid.NewGuid():N}";
        var group = $"g-{Guid.NewGuid():N}";
        broker.CreateTopic(topic, KafkaPartitions);
        var template = new NodeConfig
        {
            ApiUrl = standIn.Url,
            ApiKey = standIn.ApiKey,
            Consumers = [new PgConsumerConfig("pg_both", pg.Instance.UrlDsn, name, OutboxPartitions, "300ms", channel)],
            KafkaConsumers = [new KafkaConsumerConfig("k_both", broker.Bootstrap, group, [topic], GroupProtocol: "consumer")],
            Customize = json => json["cluster"]!.AsObject().Remove("number_of_shards"),
        };
        var streamOfEntity = Enumerable.Range(0, OutboxPartitions).Select(p => ($"pg:pg_both:{p}", $"bpg:p{p}"))
            .Concat(Enumerable.Range(0, KafkaPartitions).Select(p => ($"kafka:k_both:{topic}:{p}", $"bk:p{p}")))
            .ToDictionary(e => e.Item1, e => e.Item2, StringComparer.Ordinal);

        using var offsets = new CommittedOffsetMonitor(broker.Bootstrap, group, topic, KafkaPartitions, TimeSpan.FromMilliseconds(200));
        await using var cluster = NodeCluster.Create(3, template);
        var chaos = new ClusterChaos(cluster, recorder, streamOfEntity, output.WriteLine);
        var outboxLoad = OutboxLoad.Start(table, OutboxPartitions, PerPartitionPerSecond, "bpg:", recorder, TimeSpan.FromMinutes(8));
        var kafkaLoad = KafkaLoad.Start(
            broker.Bootstrap, topic, KafkaPartitions, PerPartitionPerSecond, "bk:", recorder, TimeSpan.FromMinutes(8));
        List<string> failures;
        try
        {
            failures = await ChaosRun.RunWatchedAsync(cluster, chaos, outboxLoad, output);
        }
        finally
        {
            await kafkaLoad.DisposeAsync();
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load: {outboxLoad.Produced} rows, {kafkaLoad.Produced} records; " +
            $"stand-in: {standIn.ReceivedCount} accepted, {standIn.PeriodicFailures} failed with error 100"));

        // Outbox: what is still in the table is waiting. Kafka: offset n holds seq n, so what is not committed is waiting.
        Dictionary<string, HashSet<long>>? rows = null;
        var ends = Enumerable.Range(0, KafkaPartitions).Select(p => recorder.ProducedCount($"bk:p{p}")).ToArray();
        async Task<IReadOnlySet<long>> PendingAsync(string stream)
        {
            if (stream.StartsWith("bk:p", StringComparison.Ordinal))
            {
                var p = int.Parse(stream["bk:p".Length..], CultureInfo.InvariantCulture);
                var committed = Math.Max(0, offsets.Highest[p]);
                return Enumerable.Range(0, (int)Math.Max(0, ends[p] - committed)).Select(i => committed + i).ToHashSet();
            }
            rows ??= await OutboxClusterChaosTests.PendingRowsAsync(pg.DataSource, table, "bpg:");
            return rows.GetValueOrDefault(stream) ?? [];
        }
        async Task<bool> DrainedAsync() => await table.CountAsync() == 0 && offsets.Highest.Select((o, p) => o >= ends[p]).All(x => x);
        await ChaosRun.CheckDeliveriesAsync(recorder, chaos.Streams, PendingAsync, DrainedAsync, failures, output);
        if (outboxLoad.Errors + kafkaLoad.Errors > 0)
        {
            failures.Add($"{outboxLoad.Errors} outbox writes and {kafkaLoad.Errors} produce rounds failed");
        }
        if (offsets.Regressions.Count > 0)
        {
            failures.Add($"committed offsets moved backwards {offsets.Regressions.Count} times");
        }
        if (failures.Count > 0)
        {
            output.WriteLine(cluster.Tails(40));
        }

        Assert.True(failures.Count == 0, "chaos checks failed:\n" + string.Join('\n', failures));
        Assert.Empty(await table.ReadDeadLettersAsync());
    }
}
