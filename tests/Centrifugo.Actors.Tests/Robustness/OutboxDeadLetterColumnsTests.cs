using System.Collections.Concurrent;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Microsoft.Extensions.Logging;
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

    private async Task<OutboxStore> StoreAsync(string table, string? consumer = null, ILoggerFactory? logs = null)
    {
        var store = new OutboxStore(consumer ?? PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn,
            OutboxTableName = table,
            DeadLetterTableName = table + "_dead_letter",
            NumPartitions = 4,
            PartitionSelectLimit = 100,
        }, logs ?? NullLoggerFactory.Instance);
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
            await batch!.CompleteAsync(
                [batch.Rows[0].Id], [new DeadLetter(batch.Rows[1].Id, "unsupported method")], CancellationToken.None);
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

    private sealed class AcceptingClient : ICentrifugoClient
    {
        public ConcurrentQueue<string> Delivered { get; } = new();

        public Task<DeliveryResult> DeliverAsync(IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken,
            Func<bool>? mayStart = null, DeliveryWindow? window = null)
        {
            foreach (var command in commands)
            {
                Delivered.Enqueue(System.Text.Encoding.UTF8.GetString(command.Request.Span));
            }
            return Task.FromResult(new DeliveryResult(commands.Select(_ => CommandOutcome.Accepted).ToArray(), null));
        }
    }

    /// <summary>An outbox with an application column; the consumer's dead-letter table made LIKE it at start-up.</summary>
    private async Task<string> OutboxWithTenantAsync()
    {
        var name = PostgresFixture.UniqueName("outbox");
        await ExecAsync(
            $"CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL, " +
            $"tenant_id int, trace text); CREATE INDEX ON {name} (partition, id)");
        return name;
    }

    /// <summary>[good, bogus method, good] in partition 0.</summary>
    private async Task InsertGoodBogusGoodAsync(string table)
    {
        string Publish(int i) => JsonSerializer.Serialize(new { channel = "dl", data = new { i } });
        await using var command = pg.DataSource.CreateCommand(
            $"INSERT INTO {table} (method, payload, partition) VALUES ('publish', convert_to($1, 'UTF8'), 0), " +
            "('bogus', convert_to('{}', 'UTF8'), 0), ('publish', convert_to($2, 'UTF8'), 0)");
        command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = Publish(1) });
        command.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = Publish(2) });
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string table)
    {
        await using var command = pg.DataSource.CreateCommand($"SELECT count(*) FROM {table}");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<OutboxPassReport> PassAsync(OutboxBatchProcessor processor) =>
        await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);

    [Fact]
    public async Task An_outbox_column_retyped_after_the_dead_letter_table_was_made_refuses_the_start_up_with_the_alter_statement()
    {
        var name = await OutboxWithTenantAsync();
        await StoreAsync(name); // creates the dead-letter table like the outbox
        await ExecAsync($"ALTER TABLE {name} ALTER COLUMN tenant_id TYPE uuid USING NULL");

        var store = new OutboxStore(PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        _stores.Add(store);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(CancellationToken.None));
        var alter = $"ALTER TABLE \"{name}_dead_letter\" ALTER COLUMN \"tenant_id\" TYPE uuid USING \"tenant_id\"::text::uuid";
        Assert.Contains(alter, e.Message, StringComparison.Ordinal);

        // The statement from the message repairs it: [good, bogus, good] gives one dead letter and two deletes.
        await ExecAsync(alter);
        var repaired = await StoreAsync(name);
        await InsertGoodBogusGoodAsync(name);
        var client = new AcceptingClient();
        var pass = await PassAsync(new OutboxBatchProcessor(repaired, client, NullLogger.Instance));
        Assert.Null(pass.DatabaseError);
        Assert.Equal((2, 1), (pass.Delivered, pass.DeadLettered));
        Assert.Equal(0, await CountAsync(name));
        Assert.Equal(1, await CountAsync(name + "_dead_letter"));
    }

    [Fact]
    public async Task An_outbox_column_retyped_while_running_stalls_the_partition_instead_of_delivering_its_batch_again_and_again()
    {
        var name = await OutboxWithTenantAsync();
        var logs = new CapturingLoggerProvider();
        using var factory = logs.CreateFactory();
        var store = await StoreAsync(name, logs: factory);
        var client = new AcceptingClient();
        var processor = new OutboxBatchProcessor(store, client, factory.CreateLogger("test"));
        await ExecAsync($"ALTER TABLE {name} ALTER COLUMN tenant_id TYPE uuid USING NULL");
        await InsertGoodBogusGoodAsync(name);

        var first = await PassAsync(processor);
        Assert.Equal(2, client.Delivered.Count);
        Assert.Equal(FailureKind.Configuration, first.Failure?.Kind);
        Assert.Contains("ALTER COLUMN \"tenant_id\" TYPE uuid", first.Failure!.Message, StringComparison.Ordinal);
        for (var i = 0; i < 3; i++)
        {
            var again = await PassAsync(processor);
            Assert.Equal(FailureKind.Configuration, again.Failure?.Kind);
        }
        Assert.Equal(2, client.Delivered.Count); // stalled: nothing sent again while the copy cannot work
        Assert.Equal(3, await CountAsync(name));
        Assert.Contains(logs.Lines, l =>
            l.Contains("[2009]", StringComparison.Ordinal) && l.Contains("partition 0", StringComparison.Ordinal));

        // Fixed by the operator: the next pass goes on (the stalled batch is delivered once more: at-least-once).
        await ExecAsync($"ALTER TABLE {name}_dead_letter ALTER COLUMN tenant_id TYPE uuid USING NULL");
        var fixedPass = await PassAsync(processor);
        Assert.Null(fixedPass.Failure);
        Assert.Equal((2, 1), (fixedPass.Delivered, fixedPass.DeadLettered));
        Assert.Equal(4, client.Delivered.Count);
        Assert.Equal(0, await CountAsync(name));
        Assert.Contains(logs.Lines, l => l.Contains("[2011]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_outbox_column_dropped_while_running_rebuilds_the_dead_letter_copy()
    {
        var name = await OutboxWithTenantAsync();
        var store = await StoreAsync(name);
        var client = new AcceptingClient();
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);
        await ExecAsync($"ALTER TABLE {name} DROP COLUMN trace");
        await InsertGoodBogusGoodAsync(name);

        var first = await PassAsync(processor);
        Assert.NotNull(first.DatabaseError); // 42703: the copy still named the dropped column
        var second = await PassAsync(processor);
        Assert.Null(second.DatabaseError);
        Assert.Null(second.Failure);
        Assert.Equal((2, 1), (second.Delivered, second.DeadLettered));
        Assert.Equal(0, await CountAsync(name));
        Assert.Equal(1, await CountAsync(name + "_dead_letter"));
    }
}
