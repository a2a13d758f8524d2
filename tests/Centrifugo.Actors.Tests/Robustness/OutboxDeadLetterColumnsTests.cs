using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>Outboxes that carry columns of the application's own (tenant, trace id…): dead letters keep every column.</summary>
public sealed class OutboxDeadLetterColumnsTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IAsyncLifetime
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

    private async Task<OutboxStore> StoreAsync(string table, string? consumer = null)
    {
        var store = new OutboxStore(consumer ?? PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn,
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            NumPartitions = 4,
            PartitionSelectLimit = 100,
        }, NullLoggerFactory.Instance);
        _stores.Add(store);
        await store.InitializeAsync(CancellationToken.None);
        return store;
    }

    private async Task ExecAsync(string sql)
    {
        await using var command = pg.DataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Dead_letter_copy_keeps_extra_not_null_columns_of_the_outbox()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await ExecAsync(
            $"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL, " +
            "tenant text NOT NULL, trace_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), \"Mixed Case\" int); " +
            $"CREATE INDEX ON {name} (partition, id); " +
            $"INSERT INTO {name} (method, payload, partition, tenant, trace_id, \"Mixed Case\") VALUES " +
            "('publish', '\\x7b7d', 0, 'acme', '6f1c1f0e-7d0a-4b9a-9d55-0f6f3b7a1d01', 7), " +
            "('bogus', '\\x7b7d', 0, 'globex', '6f1c1f0e-7d0a-4b9a-9d55-0f6f3b7a1d02', NULL)");
        var consumer = PostgresFixture.UniqueName("c");
        var store = await StoreAsync(name, consumer);

        await using (var batch = await store.BeginBatchAsync(0, CancellationToken.None))
        {
            await batch!.CompleteAsync([batch.Rows[0].Id], [new DeadLetter(batch.Rows[1].Id, "unsupported method")], CancellationToken.None);
        }

        await using var count = pg.DataSource.CreateCommand($"SELECT count(*) FROM {name}");
        Assert.Equal(0L, await count.ExecuteScalarAsync());
        await using var read = pg.DataSource.CreateCommand(
            $"SELECT method, tenant, trace_id::text, \"Mixed Case\", consumer, reason FROM {name}_dead_letter");
        await using var reader = await read.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("bogus", reader.GetString(0));
        Assert.Equal("globex", reader.GetString(1));
        Assert.Equal("6f1c1f0e-7d0a-4b9a-9d55-0f6f3b7a1d02", reader.GetString(2));
        Assert.True(reader.IsDBNull(3));
        Assert.Equal(consumer, reader.GetString(4));
        Assert.Equal("unsupported method", reader.GetString(5));
        Assert.False(await reader.ReadAsync());
    }

    [Fact]
    public async Task Columns_added_to_the_outbox_after_the_dead_letter_table_was_created_are_added_to_it_at_start_up()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await ExecAsync(
            $"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL); " +
            $"CREATE INDEX ON {name} (partition, id);");
        await StoreAsync(name);
        // The application adds a column later (migration); the dead-letter table already exists.
        await ExecAsync(
            $"ALTER TABLE {name} ADD COLUMN tenant text NOT NULL DEFAULT 'x'; ALTER TABLE {name} ALTER COLUMN tenant DROP DEFAULT; " +
            $"INSERT INTO {name} (method, payload, partition, tenant) VALUES ('bogus', '\\x7b7d', 1, 'initech')");
        var store = await StoreAsync(name);

        await using (var batch = await store.BeginBatchAsync(1, CancellationToken.None))
        {
            await batch!.CompleteAsync([], [new DeadLetter(batch.Rows[0].Id, "r")], CancellationToken.None);
        }

        await using var read = pg.DataSource.CreateCommand($"SELECT tenant FROM {name}_dead_letter");
        Assert.Equal("initech", await read.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_dead_letter_table_that_can_never_accept_a_copy_fails_start_up_with_the_column_named()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await ExecAsync(
            $"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL); " +
            $"CREATE TABLE {name}_dead_letter (id bigint, method text, payload bytea, partition int, consumer text, reason text, " +
            "failed_at timestamptz NOT NULL DEFAULT now(), operator_note text NOT NULL)");
        var store = new OutboxStore("c1", new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        _stores.Add(store);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(CancellationToken.None));
        Assert.Contains("operator_note", e.Message, StringComparison.Ordinal);
    }
}
