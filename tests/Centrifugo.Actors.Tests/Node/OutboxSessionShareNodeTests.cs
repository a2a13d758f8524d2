using System.Text.Json;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

/// <summary>
/// A consumer's pool smaller than its busy partitions (pool_max_conns, as start-up warning 3105 advises): a busy
/// partition hands its session back when someone waits, so every partition, the census and the backlog query get one.
/// A real node against PostgreSQL, a producer with the NOTIFY trigger, and the stand-in answering after 20 ms.
/// </summary>
public sealed class OutboxSessionShareNodeTests(PostgresFixture pg, ITestOutputHelper output)
    : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync()
    {
        _standIn = await CentrifugoStandIn.StartNewAsync();
        _standIn.Latency = TimeSpan.FromMilliseconds(20);
    }

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    /// <summary>
    /// Writes one row to each partition, one COPY after the other (whose row trigger notifies each partition), until
    /// stopped or for at most 20 s: every partition has a wake-up pending nearly all the time, as under steady traffic.
    /// </summary>
    private sealed class Producer : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(20));
        private readonly Task _run;

        public Producer(OutboxTestTable table, int partitions, string prefix)
        {
            _run = Task.Run(async () =>
            {
                try
                {
                    for (var seq = 0L; !_stop.IsCancellationRequested; seq++)
                    {
                        var s = seq;
                        await table.InsertAsync(Enumerable.Range(0, partitions).Select(p =>
                            new OutboxInsert("publish",
                                JsonSerializer.Serialize(new { channel = $"{prefix}:{p}", data = new { seq = s } }), p)),
                            _stop.Token);
                    }
                }
                catch (OperationCanceledException) when (_stop.IsCancellationRequested)
                {
                }
            });
        }

        public bool Running => !_run.IsCompleted;

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _run;
            _stop.Dispose();
        }
    }

    private async Task<(TestNode Node, OutboxTestTable Table)> StartAsync(string consumer, int partitions, int pool)
    {
        var name = PostgresFixture.UniqueName("outbox");
        var channel = PostgresFixture.UniqueName("chan");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name, notifyChannel: channel);
        var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres(consumer, pg.Instance.UrlDsn + $"&pool_max_conns={pool}", name, partitions, channel: channel)), output);
        await node.WaitForPartitionsAsync(partitions);
        return (node, table);
    }

    [Fact]
    public async Task Every_partition_delivers_while_busy_partitions_outnumber_the_pooled_sessions()
    {
        const int partitions = 6, atLeast = 20;
        var (node, table) = await StartAsync("pg_share", partitions, pool: 2);
        await using var _ = node;
        int[] Delivered() => Enumerable.Range(0, partitions).Select(p => _standIn.ReceivedFor($"share:{p}").Count).ToArray();

        await using (var producer = new Producer(table, partitions, "share"))
        {
            await Poll.UntilAsync(() => !producer.Running || Delivered().All(n => n >= atLeast),
                "every partition delivering, or the producer done", TimeSpan.FromSeconds(30));
            var delivered = Delivered();
            Assert.True(producer.Running && delivered.All(n => n >= atLeast),
                $"rows delivered per partition while the producer ran: {string.Join(", ", delivered)} (each must reach {atLeast})");
        }
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task The_census_and_the_backlog_query_get_a_session_while_busy_partitions_hold_the_whole_pool()
    {
        const int partitions = 2;
        var (node, table) = await StartAsync("pg_share_census", partitions, pool: 2);
        await using var _ = node;
        var store = node.Runtime.Outbox["pg_share_census"].Store;

        await using var producer = new Producer(table, partitions, "census");
        await Poll.UntilAsync(() => Enumerable.Range(0, partitions).All(p => _standIn.ReceivedFor($"census:{p}").Count >= 20),
            "both partitions busy", TimeSpan.FromSeconds(30));
        // The backlog has its own unpooled session (it never waits for the partitions' pool); read it beside them anyway.
        using var backlog = new OutboxBacklog(
            node.Runtime.Outbox["pg_share_census"], Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        for (var i = 0; i < 3; i++)
        {
            // Each bounded well below the pool's own wait (15 s): a session must come from a partition handing it back.
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            Assert.NotEmpty(await store.NonEmptyPartitionsAsync(bound.Token));
            Assert.NotEmpty(await backlog.ReadAsync(CancellationToken.None));
        }
        Assert.True(producer.Running);
    }
}
