using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>
/// Latency of a busy partition: a wake-up (NOTIFY) that arrives while a batch is being delivered makes the batch's
/// commit read the partition's next rows in the same round trip; the partition's transactions commit asynchronously.
/// </summary>
public sealed class OutboxWakeDuringPassTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    /// <summary>Accepts everything; the first delivery runs <see cref="During"/> first (a producer commits meanwhile).</summary>
    private sealed class AcceptingClient : ICentrifugoClient
    {
        public Func<Task>? During { get; set; }
        public List<string> Delivered { get; } = [];

        public async Task<DeliveryResult> DeliverAsync(IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken,
            Func<bool>? mayStart = null, DeliveryWindow? window = null)
        {
            if (During is { } during)
            {
                During = null;
                await during();
            }
            Delivered.AddRange(commands.Select(c => System.Text.Encoding.UTF8.GetString(c.Request.Span)));
            return new DeliveryResult(commands.Select(_ => CommandOutcome.Accepted).ToArray(), null);
        }
    }

    private static OutboxInsert Row(int i) => new("publish", JsonSerializer.Serialize(new { channel = "x", data = new { i } }), 0);

    private async Task<(OutboxTestTable Table, OutboxStore Store)> SetUpAsync(int rows)
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, rows).Select(Row));
        var store = new OutboxStore(PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        return (table, store);
    }

    [Fact]
    public async Task A_wake_during_delivery_makes_the_commit_read_the_rows_committed_meanwhile()
    {
        var (table, store) = await SetUpAsync(rows: 2);
        await using var _ = store;
        var wake = new WakeSignal();
        var client = new AcceptingClient
        {
            During = async () =>
            {
                await table.InsertOneAsync(Row(2)); // committed while the batch is in flight; its NOTIFY wakes the partition
                wake.Set();
            },
        };
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);

        var report = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, wake.TryConsume);

        Assert.False(report.Failed);
        Assert.Equal(2, report.Delivered);
        Assert.False(wake.TryConsume()); // the wake was spent on the continued read
        var next = Assert.IsType<OutboxBatch>(report.Next?.Batch);
        Assert.Equal(0, report.Next!.Chain);
        Assert.Equal(await table.IdsAsync(), next.Rows.Select(r => r.Id)); // exactly the row committed meanwhile, locked
        var control = new OutboxPassControl();
        control.After(report, 100);
        Assert.Same(report.Next, control.TakeReadAhead()); // delivered next without waiting

        var second = await processor.FinishSafelyAsync(report.Next, CancellationToken.None, wake.TryConsume);
        Assert.Equal(1, second.Delivered);
        Assert.Null(second.Next);
        Assert.Equal(0, await table.CountAsync());
        Assert.Equal(3, client.Delivered.Count);
        Assert.Contains("\"i\":2", client.Delivered[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_wake_the_commit_reads_nothing_further()
    {
        var (table, store) = await SetUpAsync(rows: 2);
        await using var _ = store;
        var wake = new WakeSignal();
        var client = new AcceptingClient { During = () => table.InsertOneAsync(Row(2)) }; // no NOTIFY, no wake
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);

        var report = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, wake.TryConsume);

        Assert.Equal(2, report.Delivered);
        Assert.Null(report.Next);
        Assert.Equal(1, await table.CountAsync()); // left for the next wake or census
    }

    [Fact]
    public async Task A_deferred_completion_holds_the_lock_and_then_commits_with_the_next_read_in_one_round_trip()
    {
        var (table, store) = await SetUpAsync(rows: 2);
        await using var _ = store;
        var wake = new WakeSignal();
        var client = new AcceptingClient();
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);

        var report = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, wake.TryConsume, deferCompletion: true);

        Assert.False(report.Failed);
        Assert.Equal(2, report.Delivered);
        Assert.Null(report.Next);
        var deferred = Assert.IsType<DeferredCompletion>(report.Deferred);
        Assert.Equal(2, await table.CountAsync()); // delivered, not yet deleted
        Assert.False(await TryLockAsync(store, 0)); // the owner still holds the partition

        await table.InsertOneAsync(Row(2)); // the next row, and its wake-up
        var read = await processor.ContinueDeferredAsync(deferred, CancellationToken.None);

        var next = Assert.IsType<OutboxBatch>(read.Batch);
        Assert.Equal(await table.IdsAsync(), next.Rows.Select(r => r.Id)); // the two delivered rows are gone, the new one read
        Assert.Single(next.Rows);
        Assert.False(await TryLockAsync(store, 0)); // under the lock, taken again in the same round trip
        var second = await processor.FinishSafelyAsync(read, CancellationToken.None, wake.TryConsume);
        Assert.Null(second.Deferred);
        Assert.Equal(0, await table.CountAsync());
        Assert.Equal(3, client.Delivered.Count);
    }

    [Fact]
    public async Task A_deferred_completion_without_a_wake_commits_alone_and_releases_the_lock()
    {
        var (table, store) = await SetUpAsync(rows: 2);
        await using var _ = store;
        var processor = new OutboxBatchProcessor(store, new AcceptingClient(), NullLogger.Instance);

        var report = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, deferCompletion: true);
        Assert.Null(await processor.CompleteDeferredAsync(report.Deferred!, CancellationToken.None));

        Assert.Equal(0, await table.CountAsync());
        Assert.True(await TryLockAsync(store, 0));
    }

    [Fact]
    public async Task Only_a_short_batch_delivered_in_full_is_deferred()
    {
        var (table, store) = await SetUpAsync(rows: 3);
        await using var _ = store;
        var wake = new WakeSignal();
        var processor = new OutboxBatchProcessor(store, new AcceptingClient(), NullLogger.Instance);

        wake.Set(); // a wake-up is pending: the commit reads on at once instead
        var woken = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, wake.TryConsume, deferCompletion: true);
        Assert.Null(woken.Deferred);
        Assert.NotNull(woken.Next);
        await woken.Next!.Batch!.DisposeAsync();

        await table.InsertAsync(Enumerable.Range(3, 200).Select(Row)); // a full batch (limit 100) goes on at once
        var full = await processor.FinishSafelyAsync(
            await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None, deferCompletion: true);
        Assert.Null(full.Deferred);
        Assert.NotNull(full.Next);
        await full.Next!.Batch!.DisposeAsync();
        Assert.Equal(100, await table.CountAsync()); // the first 100 deleted, the next 100 read ahead under the lock
    }

    /// <summary>Whether another session can take the consumer's lock on the partition now (it releases it at once).</summary>
    private async Task<bool> TryLockAsync(OutboxStore store, int partition)
    {
        await using var connection = await pg.DataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock($1::regclass::oid::int, $2)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.Sql.OutboxTable });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_partition_lock_statement_turns_synchronous_commit_off_for_its_transaction_only(bool tryLock)
    {
        await using var connection = await pg.DataSource.OpenConnectionAsync();
        // The tests' server runs with synchronous_commit off; this session takes the stock setting.
        await using (var stock = new NpgsqlCommand("SET synchronous_commit = on", connection))
        {
            await stock.ExecuteNonQueryAsync();
        }
        await using (var begin = new NpgsqlCommand("BEGIN", connection))
        {
            await begin.ExecuteNonQueryAsync();
        }
        await using (var lockCommand = new NpgsqlCommand(OutboxSql.Lock(tryLock), connection))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "pg_class" }); // any table
            lockCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 7 });
            lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = 10_000 });
            lockCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = 42 });
            await lockCommand.ExecuteNonQueryAsync();
        }
        Assert.Equal("off", await ShowAsync(connection));
        await using (var commit = new NpgsqlCommand("COMMIT", connection))
        {
            await commit.ExecuteNonQueryAsync();
        }
        Assert.Equal("on", await ShowAsync(connection));
        await using var reset = new NpgsqlCommand("RESET synchronous_commit", connection);
        await reset.ExecuteNonQueryAsync();
    }

    private static async Task<string> ShowAsync(NpgsqlConnection connection)
    {
        await using var show = new NpgsqlCommand("SHOW synchronous_commit", connection);
        return (string)(await show.ExecuteScalarAsync())!;
    }
}
