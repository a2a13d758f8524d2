using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>SIGTERM (what Kubernetes sends) while rows flow: leave the cluster, drain, exit 0, lose nothing.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class ShutdownTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task Sigterm_while_rows_flow_exits_0_after_leaving_the_cluster_and_a_new_node_delivers_the_rest()
    {
        const int partitions = 4;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var config = new NodeConfig
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            Consumers = [new PgConsumerConfig("pg_sigterm", pg.Instance.UrlDsn, name, partitions)],
        };
        // Each request takes a while, so SIGTERM lands with batches in flight.
        _standIn.Latency = TimeSpan.FromMilliseconds(20);

        using var stopProducing = new CancellationTokenSource();
        var produced = new long[partitions];
        var producer = Task.Run(async () =>
        {
            for (var i = 0; !stopProducing.IsCancellationRequested && i < 100_000; i++)
            {
                var partition = i % partitions;
                await table.InsertOneAsync(OutboxRows.Publish($"term:{partition}", produced[partition], partition));
                produced[partition]++;
            }
        });

        await using (var first = config.Run("node-1"))
        {
            try
            {
                await first.WaitUntilAsync(() => Task.FromResult(_standIn.ReceivedCount >= 200),
                    "200 rows delivered", TimeSpan.FromSeconds(60));
                var clock = System.Diagnostics.Stopwatch.StartNew();
                first.Terminate();
                var exitCode = await first.WaitForExitAsync(TimeSpan.FromSeconds(30));

                Assert.True(exitCode == 0, $"exit code {exitCode}.{first.Tail()}");
                output.WriteLine($"node-1 exited 0 {clock.ElapsedMilliseconds} ms after SIGTERM");
                Assert.Contains(first.Lines, l => l.Contains("Leaving", StringComparison.Ordinal));
                Assert.Contains(first.Lines, l => l.Contains("Shutting down", StringComparison.OrdinalIgnoreCase)
                    || l.Contains("Exiting completed", StringComparison.Ordinal));
                Assert.DoesNotContain(first.Lines, l =>
                    l.Contains("fail:", StringComparison.Ordinal) || l.Contains("crit:", StringComparison.Ordinal));
            }
            finally
            {
                output.WriteLine(first.Output);
            }
        }

        // Rows kept arriving after the node left; whatever it did not commit is still there for the next node.
        await stopProducing.CancelAsync();
        await producer;

        await using var second = config.Run("node-2");
        await second.WaitUntilAsync(async () => await table.CountAsync() == 0, "outbox drained by node-2", TimeSpan.FromSeconds(60));
        for (var p = 0; p < partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"term:{p}", produced[p]);
        }

        Assert.Empty(await table.ReadDeadLettersAsync());
    }

    [Fact]
    public async Task Sigterm_of_a_kafka_node_leaves_the_group_before_the_process_exits()
    {
        // A process that exits without leaving its consumer group leaves a ghost member behind, and the group waits a
        // whole session timeout for it before the other members get its partitions.
        using var broker = Testing.Kafka.KafkaMockCluster.Create(brokers: 1);
        var topic = $"leave-{Guid.NewGuid():N}";
        broker.CreateTopic(topic, 2);
        var config = new NodeConfig
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            KafkaConsumers = [new KafkaConsumerConfig("k_leave", broker.Bootstrap, $"g-{Guid.NewGuid():N}", [topic])],
        };

        await using var node = config.Run("node-1");
        try
        {
            await node.WaitForOutputAsync("KafkaConsumerHub[4051]", TimeSpan.FromSeconds(60));
            node.Terminate();
            var exitCode = await node.WaitForExitAsync(TimeSpan.FromSeconds(30));

            Assert.True(exitCode == 0, $"exit code {exitCode}.{node.Tail()}");
            Assert.Contains(node.Lines, l => l.Contains("KafkaConsumerHub[4014]", StringComparison.Ordinal));
        }
        finally
        {
            output.WriteLine(node.Output);
        }
    }
}
