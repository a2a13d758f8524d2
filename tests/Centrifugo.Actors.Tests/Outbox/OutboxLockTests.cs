using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>
/// Which owners a partition's advisory lock excludes: every consumer of the same table, whatever its name and however
/// the table is spelled; with centrifugo_compatible_lock also Centrifugo's built-in consumer of the same name.
/// </summary>
public sealed class OutboxLockTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private readonly List<OutboxStore> _stores = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }

    private async Task<OutboxStore> StoreAsync(
        string consumer, string table, bool tryLock = true, bool compatible = false, ILoggerFactory? logs = null)
    {
        var store = new OutboxStore(consumer, new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn,
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            NumPartitions = 4,
            UseTryLock = tryLock,
            CentrifugoCompatibleLock = compatible,
        }, logs ?? NullLoggerFactory.Instance);
        _stores.Add(store);
        await store.InitializeAsync(CancellationToken.None);
        return store;
    }

    /// <summary>Centrifugo's own statement (internal/consuming/postgresql.go), in a transaction of its own.</summary>
    private async Task<NpgsqlConnection> HoldCentrifugoLockAsync(string consumer, int partition)
    {
        var connection = await pg.DataSource.OpenConnectionAsync();
        await ExecuteAsync(connection, "BEGIN");
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext($1))", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "centrifugo_partition_lock_" + consumer + partition });
        await command.ExecuteNonQueryAsync();
        return connection;
    }

    private async Task<bool> CentrifugoTryLockAsync(string consumer, int partition)
    {
        await using var connection = await pg.DataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock(hashtext($1))", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "centrifugo_partition_lock_" + consumer + partition });
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Two_consumer_names_on_one_table_exclude_each_other_however_the_table_is_spelled()
    {
        // Two deployments named differently, or the old and the new name of a consumer during a rolling rename.
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var old = await StoreAsync(PostgresFixture.UniqueName("old"), table.Name);
        var renamed = await StoreAsync(PostgresFixture.UniqueName("new"), "public." + table.Name.ToUpperInvariant());

        await using (var held = await old.BeginBatchAsync(0, CancellationToken.None))
        {
            Assert.NotNull(held);
            Assert.Null(await renamed.BeginBatchAsync(0, CancellationToken.None));
            await using var other = await renamed.BeginBatchAsync(1, CancellationToken.None);
            Assert.NotNull(other); // the lock is the partition's, not the table's as a whole
        }

        await using var after = await renamed.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(after);
        Assert.Null(await old.BeginBatchAsync(0, CancellationToken.None));
    }

    [Fact]
    public async Task Consumers_of_two_tables_do_not_exclude_each_other()
    {
        var first = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var second = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var a = await StoreAsync(PostgresFixture.UniqueName("a"), first.Name);
        var b = await StoreAsync(PostgresFixture.UniqueName("b"), second.Name);

        await using var held = await a.BeginBatchAsync(0, CancellationToken.None);
        await using var other = await b.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(held);
        Assert.NotNull(other);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task With_the_compatible_lock_Centrifugo_and_this_consumer_exclude_each_other(bool tryLock)
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var consumer = PostgresFixture.UniqueName("pg");
        var store = await StoreAsync(consumer, table.Name, tryLock, compatible: true);
        var otherTable = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var without = await StoreAsync(PostgresFixture.UniqueName("pg"), otherTable.Name, tryLock);

        // Centrifugo holds partition 0: this consumer waits (or, try-lock, skips the pass); partition 1 is free.
        await using (var centrifugo = await HoldCentrifugoLockAsync(consumer, 0))
        {
            if (tryLock)
            {
                Assert.Null(await store.BeginBatchAsync(0, CancellationToken.None));
            }
            else
            {
                var waiting = store.BeginBatchAsync(0, CancellationToken.None);
                await Poll.UntilAsync(async () => await WaitingCentrifugoLocksAsync(consumer, 0) == 1,
                    "the pass waits for Centrifugo's lock");
                Assert.False(waiting.IsCompleted);
                await ExecuteAsync(centrifugo, "COMMIT");
                await using var granted = await waiting.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.NotNull(granted);
            }
            await using var free = await store.BeginBatchAsync(1, CancellationToken.None);
            Assert.NotNull(free);
        }

        // This consumer holds partition 2: Centrifugo's own lock of it is taken.
        await using (var held = await store.BeginBatchAsync(2, CancellationToken.None))
        {
            Assert.NotNull(held);
            Assert.False(await CentrifugoTryLockAsync(consumer, 2));
            Assert.True(await CentrifugoTryLockAsync(consumer, 3));
        }
        Assert.True(await CentrifugoTryLockAsync(consumer, 2));

        // Without the option the locks are unrelated.
        await using (var _ = await HoldCentrifugoLockAsync(without.ConsumerName, 0))
        {
            await using var notExcluded = await without.BeginBatchAsync(0, CancellationToken.None);
            Assert.NotNull(notExcluded);
        }
    }

    private async Task<long> WaitingCentrifugoLocksAsync(string consumer, int partition)
    {
        // a one-bigint advisory key shows as classid = its high, objid = its low 32 bits, objsubid = 1
        await using var command = pg.DataSource.CreateCommand(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1 " +
            "AND classid::bigint = (hashtext($1)::bigint >> 32) & 4294967295 AND objid::bigint = hashtext($1)::bigint & 4294967295");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = "centrifugo_partition_lock_" + consumer + partition });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Start_up_warns_when_Centrifugo_holds_a_partition_and_the_compatible_lock_is_off(bool compatible)
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var consumer = PostgresFixture.UniqueName("pg");
        var logs = new CapturingLoggerProvider();
        using var factory = logs.CreateFactory();

        await using (var centrifugo = await HoldCentrifugoLockAsync(consumer, 2))
        {
            await StoreAsync(consumer, table.Name, compatible: compatible, logs: factory);
        }

        var warnings = logs.Lines.Where(l => l.Contains("[3107]", StringComparison.Ordinal)).ToList();
        if (compatible)
        {
            Assert.Empty(warnings);
        }
        else
        {
            var warning = Assert.Single(warnings);
            Assert.Contains($"Consumer {consumer}", warning, StringComparison.Ordinal);
            Assert.Contains("partition(s) 2", warning, StringComparison.Ordinal);
            Assert.Contains("centrifugo_compatible_lock: true", warning, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Start_up_does_not_warn_without_a_Centrifugo_lock_held()
    {
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var logs = new CapturingLoggerProvider();
        using var factory = logs.CreateFactory();
        await StoreAsync(PostgresFixture.UniqueName("pg"), table.Name, logs: factory);
        Assert.DoesNotContain(logs.Lines, l => l.Contains("[3107]", StringComparison.Ordinal));
    }
}
