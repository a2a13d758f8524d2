using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>
/// One pooled session (pool_max_conns=1) and a partition that always has a next batch and a wake-up pending when its
/// batch is delivered (the rows and the NOTIFY arrive during the delivery): it hands its session back as soon as
/// another partition or the census waits for one. Two real partition loops on real PostgreSQL.
/// </summary>
public sealed class OutboxSessionShareTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    /// <summary>How many rows the busy partition's producer writes at most (it stops then: a bounded producer).</summary>
    private const int ProducerBound = 2000;

    /// <summary>Accepts everything; every delivery to partition 0 first commits its next row and wakes it, up to the bound.</summary>
    private sealed class Client(OutboxTestTable table, WakeSignal busyWake) : ICentrifugoClient
    {
        private int _produced;

        public int Produced => Volatile.Read(ref _produced);

        /// <summary>What the busy partition's producer had written when partition 1 got its row delivered (-1: not yet).</summary>
        public int ProducedWhenOtherDelivered { get; private set; } = -1;

        public async Task<DeliveryResult> DeliverAsync(IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken,
            Func<bool>? mayStart = null, DeliveryWindow? window = null)
        {
            var text = commands.Select(c => System.Text.Encoding.UTF8.GetString(c.Request.Span)).ToArray();
            if (text.Any(t => t.Contains("\"p1\"", StringComparison.Ordinal)) && ProducedWhenOtherDelivered < 0)
            {
                ProducedWhenOtherDelivered = Produced;
            }
            if (text.Any(t => t.Contains("\"p0\"", StringComparison.Ordinal)) && Produced < ProducerBound)
            {
                await table.InsertOneAsync(Row(0, Interlocked.Increment(ref _produced)), cancellationToken);
                busyWake.Set(); // its NOTIFY
            }
            return new DeliveryResult(commands.Select(_ => CommandOutcome.Accepted).ToArray(), null);
        }
    }

    private static OutboxInsert Row(int partition, int i) =>
        new("publish", JsonSerializer.Serialize(new { channel = $"p{partition}", data = new { i } }), partition);

    private sealed record Harness(
        OutboxTestTable Table, OutboxStore Store, Client Client, WakeSignal[] Wakes, CancellationTokenSource Stop, Task Run)
        : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            await Run.WaitAsync(TimeSpan.FromSeconds(30));
            Stop.Dispose();
            await Store.DisposeAsync();
        }
    }

    /// <summary>Never paused.</summary>
    private sealed class OpenGate : IBatchGate
    {
        public Task<bool> AdmitAsync(Func<Task>? beforeWait, CancellationToken stopToken) => Task.FromResult(true);

        public bool TryAdmit() => true;

        public void Finish()
        {
        }
    }

    /// <summary>Partitions 0 and 1 running, partition 0 busy (its producer running), partition 1 idle.</summary>
    private async Task<Harness> StartAsync()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var store = new OutboxStore(PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn + "&pool_max_conns=1", OutboxTableName = name, DeadLetterTableName = name + "_dead_letter",
            NumPartitions = 2,
        }, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        WakeSignal[] wakes = [new(), new()];
        var client = new Client(table, wakes[0]);
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);
        var stop = new CancellationTokenSource();
        var run = Task.WhenAll(Enumerable.Range(0, 2).Select(p =>
        {
            var partitionRun = new OutboxPartitionRun(processor, new OutboxPassControl(), wakes[p], p, 100, TimeSpan.FromMinutes(5),
                OutboxBatchProcessor.CompletionLinger);
            var loop = new PartitionLoop(partitionRun, new OpenGate(), _ => { });
            return Task.Run(async () =>
            {
                await loop.RunAsync(stop.Token, CancellationToken.None);
                await partitionRun.DisposeAsync();
            });
        }));
        var h = new Harness(table, store, client, wakes, stop, run);

        await table.InsertOneAsync(Row(0, 0));
        wakes[0].Set();
        await Poll.UntilAsync(() => client.Produced >= 5, "partition 0 busy");
        return h;
    }

    [Fact]
    public async Task A_partition_waiting_for_the_only_session_gets_it_while_another_stays_busy()
    {
        await using var h = await StartAsync();

        await h.Table.InsertOneAsync(Row(1, 0));
        h.Wakes[1].Set();

        await Poll.UntilAsync(() => h.Client.ProducedWhenOtherDelivered >= 0 || h.Client.Produced >= ProducerBound,
            "partition 1 delivered, or partition 0's producer done", TimeSpan.FromSeconds(60));
        Assert.InRange(h.Client.ProducedWhenOtherDelivered, 0, ProducerBound - 1);
    }

    [Fact]
    public async Task The_census_gets_the_only_session_while_a_partition_stays_busy()
    {
        await using var h = await StartAsync();

        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(2)); // well below the pool's own 15 s wait
        Assert.Contains(0, await h.Store.NonEmptyPartitionsAsync(bound.Token));
        Assert.True(h.Client.Produced < ProducerBound, "partition 0 still busy");
    }
}
