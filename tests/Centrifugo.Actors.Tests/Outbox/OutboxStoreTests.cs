using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Centrifugo.Actors.Tests.Outbox;

public sealed class OutboxStoreTests(PostgresFixture pg) : IClassFixture<PostgresFixture>, IAsyncLifetime
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

    private PostgresConsumerOptions Options(
        string table, int limit = 100, bool tryLock = false, string? dsn = null, string? deadLetterTable = null) => new()
    {
        Dsn = dsn ?? pg.Instance.UrlDsn,
        OutboxTableName = table,
        DeadLetterTableName = deadLetterTable ?? table + "_dead_letter",
        NumPartitions = 4,
        PartitionSelectLimit = limit,
        UseTryLock = tryLock,
    };

    private async Task<OutboxStore> StoreAsync(
        PostgresConsumerOptions options, string? consumer = null, bool initialize = true, TransactionFence? fence = null)
    {
        var store = new OutboxStore(consumer ?? PostgresFixture.UniqueName("c"), options, NullLoggerFactory.Instance, fence);
        _stores.Add(store);
        if (initialize)
        {
            await store.InitializeAsync(CancellationToken.None);
        }

        return store;
    }

    private async Task<OutboxTestTable> TableAsync(
        OutboxPayloadType type = OutboxPayloadType.Bytea, string? name = null, bool methodNullable = false) =>
        await OutboxTestTable.CreateAsync(
            pg.DataSource, name ?? PostgresFixture.UniqueName("outbox"), type, methodNullable: methodNullable);

    private static IEnumerable<OutboxInsert> Rows(int partition, int count, string prefix = "m") =>
        Enumerable.Range(0, count).Select(i => new OutboxInsert("publish", $"{{\"{prefix}\":{i}}}", partition));

    private static string Text(OutboxRow row) => Encoding.UTF8.GetString(row.Payload.Span);

    [Fact]
    public async Task Batch_reads_only_its_partition_in_id_order_up_to_the_select_limit()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 3).Concat(Rows(1, 5)).Concat(Rows(0, 3, "n")));
        var store = await StoreAsync(Options(table.Name, limit: 4));

        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);

        Assert.NotNull(batch);
        Assert.Equal(4, batch.Rows.Count);
        Assert.All(batch.Rows, r => Assert.Equal(0, r.Partition));
        Assert.Equal(batch.Rows.Select(r => r.Id).Order(), batch.Rows.Select(r => r.Id));
        Assert.Equal(["{\"m\": 0}", "{\"m\": 1}", "{\"m\": 2}", "{\"n\": 0}"],
            batch.Rows.Select(Text).Select(t => t.Replace(":", ": ", StringComparison.Ordinal)));
        Assert.All(batch.Rows, r => Assert.Equal("publish", r.Method));
    }

    [Fact]
    public async Task Complete_deletes_exactly_the_given_ids_and_moves_dead_letters_in_one_transaction()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(2, 5));
        var consumer = PostgresFixture.UniqueName("c");
        var store = await StoreAsync(Options(table.Name), consumer);

        await using (var batch = await store.BeginBatchAsync(2, CancellationToken.None))
        {
            var ids = batch!.Rows.Select(r => r.Id).ToArray();
            await batch.CompleteAsync(
                [ids[0], ids[1]], [new DeadLetter(ids[2], "centrifugo error 102: unknown channel")], CancellationToken.None);
        }

        var all = await table.IdsAsync();
        Assert.Equal(2, all.Count);
        var deadLetters = await table.ReadDeadLettersAsync();
        var dl = Assert.Single(deadLetters);
        Assert.Equal("publish", dl.Method);
        Assert.Equal("{\"m\":2}", dl.Payload);
        Assert.Equal(2, dl.Partition);
        Assert.Equal(consumer, dl.Consumer);
        Assert.Equal("centrifugo error 102: unknown channel", dl.Reason);
        Assert.True(dl.FailedAt > DateTimeOffset.UtcNow.AddMinutes(-5));
    }

    [Fact]
    public async Task Disposing_a_batch_without_completing_it_rolls_everything_back()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 3));
        var store = await StoreAsync(Options(table.Name));

        await using (var batch = await store.BeginBatchAsync(0, CancellationToken.None))
        {
            Assert.Equal(3, batch!.Rows.Count);
        }

        Assert.Equal(3, await table.CountAsync());
        Assert.Empty(await table.ReadDeadLettersAsync());
        // the partition lock was released with the rollback
        await using var again = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Equal(3, again!.Rows.Count);
    }

    [Fact]
    public async Task A_failed_complete_deletes_nothing_and_releases_the_lock()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 2));
        var store = await StoreAsync(Options(table.Name));
        await using (var batch = await store.BeginBatchAsync(0, CancellationToken.None))
        {
            await using var drop = pg.DataSource.CreateCommand($"DROP TABLE {OutboxSql.QuoteTableName(table.Name + "_dead_letter")}");
            await drop.ExecuteNonQueryAsync();
            await Assert.ThrowsAsync<PostgresException>(() =>
                batch!.CompleteAsync([batch.Rows[0].Id], [new DeadLetter(batch.Rows[1].Id, "bad")], CancellationToken.None));
        }

        Assert.Equal(2, await table.CountAsync());
        await using var again = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Equal(2, again!.Rows.Count);
    }

    [Fact]
    public async Task Blocking_lock_makes_a_second_batch_on_the_same_partition_wait_and_then_see_the_deletes()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(1, 4));
        var consumer = PostgresFixture.UniqueName("c");
        var storeA = await StoreAsync(Options(table.Name, limit: 2), consumer);
        var storeB = await StoreAsync(Options(table.Name, limit: 2), consumer);

        var first = await storeA.BeginBatchAsync(1, CancellationToken.None);
        var second = storeB.BeginBatchAsync(1, CancellationToken.None);
        await Poll.UntilAsync(async () => await WaitingAdvisoryLocksAsync(await table.LockKeyAsync()) == 1,
            "second batch waits on the advisory lock");
        Assert.False(second.IsCompleted);

        await first!.CompleteAsync(first.Rows.Select(r => r.Id).ToArray(), [], CancellationToken.None);
        await using var secondBatch = await second.WaitAsync(TimeSpan.FromSeconds(10));

        // READ COMMITTED: the SELECT after the lock wait sees the first batch's deletes
        Assert.Equal(2, secondBatch!.Rows.Count);
        Assert.DoesNotContain(secondBatch.Rows, r => first.Rows.Any(f => f.Id == r.Id));
    }

    [Fact]
    public async Task A_read_that_waited_for_the_lock_longer_than_the_send_window_confirms_the_lock_and_may_send()
    {
        // The send window counts from the sending of the read, so a long lock wait (a hand-off from a frozen owner, a
        // second deployment) would leave nothing of it; one more statement proves the lock held and restarts it.
        var table = await TableAsync();
        await table.InsertAsync(Rows(2, 4));
        var consumer = PostgresFixture.UniqueName("c");
        var fence = new TransactionFence(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1));
        var storeA = await StoreAsync(Options(table.Name, limit: 2), consumer, fence: fence);
        var storeB = await StoreAsync(Options(table.Name, limit: 2), consumer, fence: fence);

        var first = await storeA.BeginBatchAsync(2, CancellationToken.None);
        var second = storeB.BeginBatchAsync(2, CancellationToken.None);
        await Poll.UntilAsync(async () => await WaitingAdvisoryLocksAsync(await table.LockKeyAsync()) == 1,
            "second batch waits on the advisory lock");
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // the wait itself is what is tested: it must outlast the 1 s window
        await first!.CompleteAsync(first.Rows.Select(r => r.Id).ToArray(), [], CancellationToken.None);
        await using var secondBatch = await second.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(2, secondBatch!.Rows.Count);
        Assert.True(secondBatch.MaySend());
    }

    [Fact]
    public async Task Try_lock_returns_null_while_another_batch_holds_the_partition()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(3, 2));
        var consumer = PostgresFixture.UniqueName("c");
        var holder = await StoreAsync(Options(table.Name), consumer);
        var trier = await StoreAsync(Options(table.Name, tryLock: true), consumer);

        await using (var held = await holder.BeginBatchAsync(3, CancellationToken.None))
        {
            Assert.Null(await trier.BeginBatchAsync(3, CancellationToken.None));
        }

        await using var acquired = await trier.BeginBatchAsync(3, CancellationToken.None);
        Assert.Equal(2, acquired!.Rows.Count);
    }

    [Fact]
    public async Task The_lock_does_not_exclude_another_partition()
    {
        // Other consumer names and other tables: OutboxLockTests.
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 1).Concat(Rows(1, 1)));
        var consumer = PostgresFixture.UniqueName("c");
        var a = await StoreAsync(Options(table.Name, tryLock: true), consumer);
        var sameConsumer = await StoreAsync(Options(table.Name, tryLock: true), consumer);

        await using var held = await a.BeginBatchAsync(0, CancellationToken.None);
        await using var otherPartition = await sameConsumer.BeginBatchAsync(1, CancellationToken.None);
        await using var samePartition = await sameConsumer.BeginBatchAsync(0, CancellationToken.None);

        Assert.NotNull(held);
        Assert.NotNull(otherPartition);
        Assert.Null(samePartition);
    }

    [Theory]
    [InlineData("Bytea")]
    [InlineData("Jsonb")]
    [InlineData("Json")]
    [InlineData("Text")]
    public async Task Payload_of_every_column_type_is_read_as_utf8_bytes_and_dead_letters_keep_its_type(string payloadType)
    {
        var type = Enum.Parse<OutboxPayloadType>(payloadType);
        var table = await TableAsync(type);
        const string payload = "{\"channel\":\"ch\",\"data\":{\"text\":\"héllo ✓\"}}";
        await table.InsertAsync([new OutboxInsert("publish", payload, 0), new OutboxInsert("publish", payload, 0)]);
        var store = await StoreAsync(Options(table.Name));

        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        var json = System.Text.Json.JsonDocument.Parse(batch!.Rows[0].Payload);
        Assert.Equal("héllo ✓", json.RootElement.GetProperty("data").GetProperty("text").GetString());
        await batch.CompleteAsync([batch.Rows[0].Id], [new DeadLetter(batch.Rows[1].Id, "r")], CancellationToken.None);

        var dl = Assert.Single(await table.ReadDeadLettersAsync());
        Assert.Equal("héllo ✓",
            System.Text.Json.JsonDocument.Parse(dl.Payload).RootElement.GetProperty("data").GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_read_stops_adding_rows_once_their_payloads_reach_the_byte_budget()
    {
        var table = await TableAsync();
        var pad = new string('x', 3_980);
        await table.InsertAsync(Enumerable.Range(0, 7).Select(i => new OutboxInsert("publish", $"{{\"i\":{i},\"pad\":\"{pad}\"}}", 0)));
        var store = await StoreAsync(Options(table.Name) with { PartitionSelectMaxBytes = 10_000 });

        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        // 0, 4000 and 8000 bytes before the first three rows are below the budget; 12,000 before the fourth is not.
        Assert.Equal(3, batch!.Rows.Count);
        Assert.All(batch.Rows, r => Assert.Equal(r.Payload.Length, r.PayloadBytes));
        Assert.True(store.IsFullRead(batch.Rows));
        var next = await batch.ReadAheadAsync(batch.Rows[^1].Id, CancellationToken.None);
        Assert.Equal(3, next.Count);

        // The first row always comes, however large.
        var tiny = await StoreAsync(Options(table.Name) with { PartitionSelectMaxBytes = 1 });
        await batch.DisposeAsync();
        await using var single = await tiny.BeginBatchAsync(0, CancellationToken.None);
        Assert.Single(single!.Rows);
    }

    [Theory]
    [InlineData("Bytea")]
    [InlineData("Jsonb")]
    [InlineData("Json")]
    [InlineData("Text")]
    public async Task A_payload_over_the_maximum_is_not_read_only_its_size(string payloadType)
    {
        var table = await TableAsync(Enum.Parse<OutboxPayloadType>(payloadType));
        var big = $"{{\"channel\":\"ch\",\"data\":\"{new string('y', 5_000)}\"}}";
        await table.InsertAsync([new OutboxInsert("publish", "{\"a\":1}", 0), new OutboxInsert("publish", big, 0),
            new OutboxInsert("publish", "{\"b\":2}", 0)]);
        var store = await StoreAsync(Options(table.Name) with { PayloadMaxBytes = 2_000 });

        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Equal(3, batch!.Rows.Count);
        Assert.Equal([false, true, false], batch.Rows.Select(r => r.PayloadOmitted));
        Assert.True(batch.Rows[1].Payload.IsEmpty);
        // jsonb prints its own text (a space after each colon and comma): the size is that of what would be sent.
        Assert.Equal(payloadType == "Jsonb" ? big.Length + 3 : big.Length, batch.Rows[1].PayloadBytes);
        Assert.False(batch.Rows[2].Payload.IsEmpty);
    }

    [Fact]
    public async Task Null_method_is_read_as_empty_string_meaning_envelope_mode()
    {
        var table = await TableAsync(methodNullable: true);
        await table.InsertAsync([new OutboxInsert(null, "{\"method\":\"publish\",\"payload\":{}}", 0)]);
        var store = await StoreAsync(Options(table.Name));

        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Equal("", Assert.Single(batch!.Rows).Method);
    }

    [Fact]
    public async Task Schema_qualified_mixed_case_table_names_address_the_table_created_unquoted()
    {
        var schema = PostgresFixture.UniqueName("Sch");
        var raw = PostgresFixture.UniqueName("MixedOutbox");
        // what a producer following Centrifugo's DDL would run: unquoted, so folded to lower case
        await using (var create = pg.DataSource.CreateCommand(
            $"CREATE SCHEMA {schema}; CREATE TABLE {schema}.{raw} " +
            "(id BIGSERIAL PRIMARY KEY, method text NOT NULL, payload BYTEA NOT NULL, partition INTEGER NOT NULL); " +
            $"INSERT INTO {schema}.{raw} (method, payload, partition) VALUES ('publish', '\\x7b7d', 0)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var store = await StoreAsync(Options($"{schema}.{raw}", deadLetterTable: $"{schema}.{raw}_DL"));
        await using var batch = await store.BeginBatchAsync(0, CancellationToken.None);
        Assert.Equal("{}", Text(Assert.Single(batch!.Rows)));
        Assert.Equal(1, await store.CountPendingAsync(0, CancellationToken.None));
        await using var exists = pg.DataSource.CreateCommand(
            $"SELECT to_regclass('{schema.ToLowerInvariant()}.{raw.ToLowerInvariant()}_dl') IS NOT NULL");
        Assert.True((bool)(await exists.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Missing_outbox_table_fails_initialisation_naming_the_table_but_not_the_password()
    {
        var name = PostgresFixture.UniqueName("missing");
        var store = await StoreAsync(Options(name), "pgc", initialize: false);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(CancellationToken.None));
        Assert.Contains($"\"{name}\"", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pg.Instance.Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unreachable_server_fails_initialisation_naming_host_and_port_but_not_the_password()
    {
        var table = await TableAsync();
        var dsn = $"postgres://postgres:{pg.Instance.Password}@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2";
        var store = await StoreAsync(Options(table.Name, dsn: dsn), "pgdown", initialize: false);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(CancellationToken.None));
        Assert.Contains("127.0.0.1:1", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(pg.Instance.Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrong_password_error_does_not_contain_the_password()
    {
        var table = await TableAsync();
        var dsn = $"host=127.0.0.1 port={pg.Instance.Port} user=postgres password=wrong-{pg.Instance.Password} dbname=postgres " +
            "sslmode=disable";
        var store = await StoreAsync(Options(table.Name, dsn: dsn), "pgauth", initialize: false);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => store.InitializeAsync(CancellationToken.None));
        Assert.DoesNotContain(pg.Instance.Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dead_letter_table_is_created_like_the_outbox_plus_consumer_reason_failed_at_and_initialise_is_idempotent()
    {
        var table = await TableAsync(OutboxPayloadType.Jsonb);
        var store = await StoreAsync(Options(table.Name));
        await store.InitializeAsync(CancellationToken.None);

        await using var command = pg.DataSource.CreateCommand(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute " +
            "WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = OutboxSql.QuoteTableName(table.Name + "_dead_letter") });
        var columns = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                columns.Add($"{reader.GetString(0)} {reader.GetString(1)}{(reader.GetBoolean(2) ? " not null" : "")}");
            }
        }

        Assert.Equal(
            ["id bigint not null", "method text not null", "payload jsonb not null", "partition integer not null",
             "consumer text", "reason text", "failed_at timestamp with time zone not null"],
            columns);
    }

    [Fact]
    public async Task Count_pending_counts_one_partition()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 3).Concat(Rows(1, 2)));
        var store = await StoreAsync(Options(table.Name));

        Assert.Equal(3, await store.CountPendingAsync(0, CancellationToken.None));
        Assert.Equal(2, await store.CountPendingAsync(1, CancellationToken.None));
    }

    [Fact]
    public async Task Cancelling_a_blocked_lock_wait_returns_the_connection_and_holds_nothing()
    {
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 1));
        var consumer = PostgresFixture.UniqueName("c");
        var a = await StoreAsync(Options(table.Name), consumer);
        var b = await StoreAsync(Options(table.Name), consumer);

        await using (var held = await a.BeginBatchAsync(0, CancellationToken.None))
        {
            using var cts = new CancellationTokenSource();
            var waiting = b.BeginBatchAsync(0, cts.Token);
            await Poll.UntilAsync(async () => await WaitingAdvisoryLocksAsync(await table.LockKeyAsync()) == 1, "b waits");
            await cts.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        }

        await using var after = await b.BeginBatchAsync(0, CancellationToken.None);
        Assert.Single(after!.Rows);
    }

    private async Task<long> WaitingAdvisoryLocksAsync(int key1)
    {
        // two-int advisory locks: classid = key1, objid = key2, objsubid = 2
        await using var command = pg.DataSource.CreateCommand(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objsubid = 2 AND classid::bigint = $1");
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = (uint)key1 });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task A_read_ahead_batch_that_another_owner_delivered_while_the_lock_was_free_is_read_again_not_redelivered()
    {
        // Two owners of one partition (two deployments on one table, or a stale owner): A holds the lock with rows
        // 1-3 and has read 4-6 ahead; B waits for the lock. A's commit frees the lock, B takes it before A re-takes it,
        // and B delivers 4-6. A must not then hand out 4-6 again, after B's newer rows (issue 7, F1).
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 9));
        var consumer = PostgresFixture.UniqueName("c");
        var ownerA = await StoreAsync(Options(table.Name, limit: 3), consumer);
        var ownerB = await StoreAsync(Options(table.Name, limit: 3), consumer);

        var first = await ownerA.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(first);
        var ahead = await first.ReadAheadAsync(first.Rows[^1].Id, CancellationToken.None);
        Assert.Equal(3, ahead.Count);

        var bTakes = ownerB.BeginBatchAsync(0, CancellationToken.None);
        await Poll.UntilAsync(async () => await WaitingForAdvisoryLockAsync() > 0,
            "owner B waits for the partition lock", TimeSpan.FromSeconds(10));

        var aContinues = first.CompleteAndContinueAsync(first.Rows.Select(r => r.Id).ToArray(), [], ahead, CancellationToken.None);
        await using (var b = await bTakes)
        {
            Assert.NotNull(b);
            Assert.Equal(ahead.Select(r => r.Id), b.Rows.Select(r => r.Id));
            await b.CompleteAsync(b.Rows.Select(r => r.Id).ToArray(), [], CancellationToken.None);
        }

        await using var next = await aContinues;
        Assert.NotNull(next);
        var all = await table.IdsAsync();
        Assert.Equal(3, all.Count);
        Assert.Equal(all, next.Rows.Select(r => r.Id));
    }

    [Fact]
    public async Task A_continuation_that_cannot_retake_the_lock_says_its_batch_was_committed()
    {
        // F12: the completion (DELETE, COMMIT) and the re-lock for the read-ahead run in one round trip. When only the
        // re-lock fails (here: lock_timeout while another owner took the lock), the rows ARE deleted, and the caller
        // must be told so (it counted them as "nothing deleted" and logged a database error).
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 9));
        var consumer = PostgresFixture.UniqueName("c");
        var shortLockWait = pg.Instance.UrlDsn + "&options=" + Uri.EscapeDataString("-c lock_timeout=200");
        var ownerA = await StoreAsync(Options(table.Name, limit: 3, dsn: shortLockWait), consumer);
        var ownerB = await StoreAsync(Options(table.Name, limit: 3), consumer);

        var first = await ownerA.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(first);
        var ahead = await first.ReadAheadAsync(first.Rows[^1].Id, CancellationToken.None);
        var bTakes = ownerB.BeginBatchAsync(0, CancellationToken.None);
        await Poll.UntilAsync(async () => await WaitingForAdvisoryLockAsync() > 0,
            "owner B waits for the partition lock", TimeSpan.FromSeconds(10));

        var done = first.Rows.Select(r => r.Id).ToArray();
        var failure = await Assert.ThrowsAsync<OutboxContinuationFailedException>(() =>
            first.CompleteAndContinueAsync(done, [], ahead, CancellationToken.None));
        Assert.Equal("55P03", Assert.IsType<PostgresException>(failure.InnerException).SqlState); // lock_not_available
        Assert.DoesNotContain(await table.IdsAsync(), id => done.Contains(id));

        await using var b = await bTakes;
        Assert.NotNull(b);
        Assert.Equal(ahead.Select(r => r.Id), b.Rows.Select(r => r.Id));
    }

    private async Task<long> WaitingForAdvisoryLockAsync()
    {
        await using var command = pg.DataSource.CreateCommand("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Fact]
    public async Task A_paused_owner_loses_the_partition_lock_after_the_fence_and_may_no_longer_send_what_it_read()
    {
        // Owner A reads a batch and then does nothing (a SIGSTOPped or frozen process). The database ends its idle
        // transaction after the fence, B gets the lock and the rows, and A's batch refuses to be sent.
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 3));
        var consumer = PostgresFixture.UniqueName("c");
        var fence = new TransactionFence(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500));
        var ownerA = await StoreAsync(Options(table.Name), consumer, fence: fence);
        var ownerB = await StoreAsync(Options(table.Name), consumer, fence: fence);

        await using var paused = await ownerA.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(paused);
        Assert.True(paused.MaySend());

        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var next = await ownerB.BeginBatchAsync(0, bound.Token);

        Assert.NotNull(next);
        Assert.Equal(paused.Rows.Select(r => r.Id), next.Rows.Select(r => r.Id));
        Assert.False(paused.MaySend());
        await Assert.ThrowsAnyAsync<Exception>(() =>
            paused.CompleteAsync(paused.Rows.Select(r => r.Id).ToArray(), [], CancellationToken.None));
        Assert.Equal(3, await table.CountAsync());
    }

    [Fact]
    public async Task A_statement_of_the_partition_transaction_running_past_the_fence_is_cancelled()
    {
        // The idle timer does not run while a statement is active (a backend stuck sending a result to a frozen owner,
        // or, here, waiting for a row lock): the fence bounds the transaction's statements as well.
        var table = await TableAsync();
        await table.InsertAsync(Rows(0, 3));
        var fence = new TransactionFence(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500));
        var owner = await StoreAsync(Options(table.Name), fence: fence);
        await using var batch = await owner.BeginBatchAsync(0, CancellationToken.None);
        Assert.NotNull(batch);

        await using var blocker = await pg.DataSource.OpenConnectionAsync();
        await using var blocking = await blocker.BeginTransactionAsync();
        await using (var rowLock = new NpgsqlCommand($"SELECT 1 FROM {table.QuotedName} WHERE id = $1 FOR UPDATE", blocker, blocking))
        {
            rowLock.Parameters.Add(new NpgsqlParameter<long> { TypedValue = batch.Rows[0].Id });
            await rowLock.ExecuteNonQueryAsync();
        }

        var e = await Assert.ThrowsAsync<PostgresException>(() =>
            batch.CompleteAsync(batch.Rows.Select(r => r.Id).ToArray(), [], CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(PostgresErrorCodes.QueryCanceled, e.SqlState);
        await blocking.RollbackAsync();
        Assert.Equal(3, await table.CountAsync());
    }

    [Fact]
    public async Task An_owner_that_stops_reading_a_large_result_loses_the_partition_lock_after_the_fence()
    {
        // A frozen owner (SIGSTOP) as its socket sees it: the result is not read, the window goes to zero, and the
        // backend blocks sending (wait event ClientWrite, state active): neither idle timer nor statement timer runs.
        const int partition = 3;
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, PostgresFixture.UniqueName("outbox"));
        var key1 = await table.LockKeyAsync();
        await using var owner = await pg.DataSource.OpenConnectionAsync();
        await using (var begin = new NpgsqlCommand("BEGIN", owner))
        {
            await begin.ExecuteNonQueryAsync();
        }
        await using (var lockCommand = new NpgsqlCommand(OutboxSql.Lock(false), owner))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.QuotedName });
            lockCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = partition });
            lockCommand.Parameters.Add(new NpgsqlParameter<long> { TypedValue = 1000 });
            lockCommand.Parameters.Add(new NpgsqlParameter<int> { TypedValue = OutboxLockKey.For("c_frozen") });
            await lockCommand.ExecuteNonQueryAsync();
        }
        var ownerPid = owner.ProcessID;
        await using var large = new NpgsqlCommand("SELECT repeat('x', 2000) FROM generate_series(1, 20000)", owner);
        var reader = await large.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess);
        Assert.True(await reader.ReadAsync()); // then nothing more is read

        await using var other = await pg.DataSource.OpenConnectionAsync();
        await Poll.UntilAsync(async () => await ScalarAsync<string?>(other,
            "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", ownerPid) == "ClientWrite", "the owner's backend blocked sending");

        await Poll.UntilAsync(async () => await ScalarAsync<bool>(other, "SELECT pg_try_advisory_xact_lock($1, " + partition + ")", key1),
            "the partition lock freed", TimeSpan.FromSeconds(20));
        try
        {
            await reader.DisposeAsync();
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            // the server dropped the frozen session
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, int parameter)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = parameter });
        var value = await command.ExecuteScalarAsync();
        return value is DBNull ? default! : (T)value!;
    }

    [Fact]
    public void The_fence_leaves_every_request_of_a_batch_a_whole_api_timeout()
    {
        var fence = TransactionFence.For(TimeSpan.FromSeconds(5), maxBatchSize: 100, selectLimit: 1000);
        Assert.Equal(TimeSpan.FromSeconds(54), fence.IdleTimeout);
        // The 10th request starts at most 45 s after the read and may take 5 s: inside the window, before the timeout.
        Assert.True(TimeSpan.FromSeconds(45) < fence.SendWindow && fence.SendWindow + TimeSpan.FromSeconds(5) < fence.IdleTimeout);
    }
}
