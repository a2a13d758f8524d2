using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.Processes;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Processes;

/// <summary>At-least-once across a crash: what was sent but not committed is sent again by the next node.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class CrashRedeliveryTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task Rows_dispatched_but_not_committed_when_the_node_is_killed_are_delivered_again_by_the_next_node()
    {
        const int partitions = 2, perPartition = 150, selectLimit = 100;
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, perPartition)
            .SelectMany(i => Enumerable.Range(0, partitions).Select(p => OutboxRows.Publish($"crash:{p}", i, p))));
        var config = new NodeConfig
        {
            ApiUrl = _standIn.Url,
            ApiKey = _standIn.ApiKey,
            // Longer than the test: the node waits for the delayed reply instead of timing out and retrying itself.
            ApiTimeout = "5m",
            Consumers = [new PgConsumerConfig("pg_crash", pg.Instance.UrlDsn, name, partitions)],
        };
        // Centrifugo applies (and the stand-in records) each first batch, but the reply never comes in time:
        // the node is inside "dispatched, not yet committed" for as long as the test wants.
        _standIn.ResponseDelay = TimeSpan.FromMinutes(5);

        await using (var first = config.Run("node-1"))
        {
            await first.WaitUntilAsync(() => Task.FromResult(_standIn.ReceivedCount >= partitions * selectLimit),
                "the first batch of every partition recorded by Centrifugo", TimeSpan.FromSeconds(60));
            first.KillHard();
            Assert.NotEqual(0, await first.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        }

        // Nothing was deleted: the killed node's transactions rolled back with its connections.
        await Poll.UntilAsync(async () => await table.CountAsync() == partitions * perPartition, "all rows still in the outbox");
        Assert.Equal(partitions * selectLimit, _standIn.ReceivedCount);

        _standIn.ResponseDelay = TimeSpan.Zero;
        await using var second = config.Run("node-2");
        await second.WaitUntilAsync(async () => await table.CountAsync() == 0, "outbox drained by node-2", TimeSpan.FromSeconds(60));

        for (var p = 0; p < partitions; p++)
        {
            OutboxRows.AssertDeliveredInOrder(_standIn, $"crash:{p}", perPartition);
            // The first batch went out twice (once per node), the rest once.
            var seqs = _standIn.ReceivedFor($"crash:{p}").Select(OutboxRows.Seq).ToArray();
            Assert.Equal(perPartition + selectLimit, seqs.Length);
            Assert.All(Enumerable.Range(0, selectLimit), i => Assert.Equal(2, seqs.Count(s => s == i)));
        }

        Assert.Empty(await table.ReadDeadLettersAsync());
    }
}
