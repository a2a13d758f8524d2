using System.Collections.Concurrent;
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
/// The partition loop's held-back completion (<see cref="OutboxBatchProcessor.CompletionLinger"/>, here one minute so
/// that the tests decide what ends it): a wake-up sends it with the next read; a stop or a pause sends it alone at once.
/// </summary>
public sealed class OutboxPartitionLoopTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
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

    private sealed class Harness(OutboxTestTable table, OutboxStore store, AcceptingClient client) : IAsyncDisposable
    {
        public OutboxTestTable Table => table;
        public OutboxStore Store => store;
        public AcceptingClient Client => client;
        public WakeSignal Wake { get; } = new();
        public ConcurrentQueue<OutboxPassReport> Reports { get; } = new();
        public volatile bool Paused;
        public TaskCompletionSource PauseGateEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public CancellationTokenSource Stop { get; } = new();
        /// <summary>The work token (the entity's drain budget spent, or the entity gone).</summary>
        public CancellationTokenSource Abort { get; } = new();
        public Task Run { get; set; } = Task.CompletedTask;

        public async ValueTask DisposeAsync()
        {
            await Stop.CancelAsync();
            await Run;
            Stop.Dispose();
            Abort.Dispose();
            await store.DisposeAsync();
        }
    }

    /// <summary>The operator's pause as the harness's flag: a paused loop waits at the gate until stopped.</summary>
    private sealed class HarnessGate(Harness h) : IBatchGate
    {
        public async Task<bool> AdmitAsync(Func<Task>? beforeWait, CancellationToken stopToken)
        {
            if (!h.Paused)
            {
                return true;
            }
            if (beforeWait is not null)
            {
                await beforeWait();
            }
            h.PauseGateEntered.TrySetResult();
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, stopToken);
            }
            catch (OperationCanceledException)
            {
            }
            return false;
        }

        public bool TryAdmit() => !h.Paused;

        public void Finish()
        {
        }
    }

    private static OutboxInsert Row(int i) => new("publish", JsonSerializer.Serialize(new { channel = "x", data = new { i } }), 0);

    private async Task<Harness> StartAsync()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        var store = new OutboxStore(PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        var client = new AcceptingClient();
        var h = new Harness(table, store, client);
        var run = new OutboxPartitionRun(
            new OutboxBatchProcessor(store, client, NullLogger.Instance), new OutboxPassControl(), h.Wake, 0, 100,
            TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(1));
        var loop = new PartitionLoop(run, new HarnessGate(h), r => h.Reports.Enqueue((OutboxPassReport)r));
        // As the entity does: the run settles once its loop has ended.
        h.Run = Task.Run(async () =>
        {
            await loop.RunAsync(h.Stop.Token, h.Abort.Token);
            await run.DisposeAsync();
        });
        await Poll.UntilAsync(() => !h.Reports.IsEmpty, "the loop's first (empty) pass"); // now it waits for a wake-up
        return h;
    }

    [Fact]
    public async Task A_short_batch_is_delivered_and_its_completion_held_until_the_next_wake_which_reads_on_in_the_same_round_trip()
    {
        await using var h = await StartAsync();
        await h.Table.InsertAsync([Row(0), Row(1)]);
        h.Wake.Set();
        await Poll.UntilAsync(() => h.Reports.Any(r => r.Deferred is not null), "the first batch delivered, its completion held");
        Assert.Equal(2, h.Client.Delivered.Count);
        Assert.Equal(2, await h.Table.CountAsync()); // not yet deleted, the lock still held
        Assert.False(await TryLockAsync(h.Store));

        await h.Table.InsertOneAsync(Row(2));
        h.Wake.Set(); // its NOTIFY
        await Poll.UntilAsync(() => h.Client.Delivered.Count == 3, "the next row delivered");
        Assert.Equal(1, await h.Table.CountAsync()); // the first two deleted with that read; the third held now
        Assert.Contains("\"i\":2", h.Client.Delivered.Last(), StringComparison.Ordinal);

        await h.Stop.CancelAsync();
        await h.Run.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await h.Table.CountAsync()); // the stop committed what was held
        Assert.True(await TryLockAsync(h.Store));
        Assert.Equal(3, h.Client.Delivered.Count);
    }

    [Fact]
    public async Task A_pause_sends_the_held_completion_at_once_and_then_waits_at_the_gate()
    {
        await using var h = await StartAsync();
        await h.Table.InsertAsync([Row(0), Row(1)]);
        h.Wake.Set();
        await Poll.UntilAsync(() => h.Reports.Any(r => r.Deferred is not null), "the batch delivered, its completion held");

        h.Paused = true;
        h.Wake.Set(); // what the pause watch does
        await h.PauseGateEntered.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(0, await h.Table.CountAsync());
        Assert.True(await TryLockAsync(h.Store));
        Assert.Equal(2, h.Client.Delivered.Count);
    }

    [Fact]
    public async Task An_abort_while_the_completion_is_held_still_deletes_the_delivered_rows()
    {
        await using var h = await StartAsync();
        await h.Table.InsertAsync([Row(0), Row(1)]);
        h.Wake.Set();
        await Poll.UntilAsync(() => h.Reports.Any(r => r.Deferred is not null), "the batch delivered, its completion held");

        // The entity is gone (EntityStop.Abort): no drain budget left for anything in flight.
        await h.Abort.CancelAsync();
        await h.Stop.CancelAsync();
        await h.Run.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(0, await h.Table.CountAsync()); // delivered: deleted, not rolled back to be delivered again
        Assert.True(await TryLockAsync(h.Store));
        Assert.Equal(2, h.Client.Delivered.Count);
    }

    /// <summary>Whether another session can take the consumer's lock on partition 0 now (released at once).</summary>
    private async Task<bool> TryLockAsync(OutboxStore store)
    {
        await using var connection = await pg.DataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand("SELECT pg_try_advisory_xact_lock($1::regclass::oid::int, 0)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = store.Sql.OutboxTable });
        return (bool)(await command.ExecuteScalarAsync())!;
    }
}
