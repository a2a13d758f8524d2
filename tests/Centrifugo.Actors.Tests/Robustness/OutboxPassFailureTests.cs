using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Partitions;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>An exception nobody foresaw inside a pass: logged with consumer/partition/ids, rolled back, counted as a failure.</summary>
public sealed class OutboxPassFailureTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private sealed class ThrowingClient : ICentrifugoClient
    {
        public int Calls;

        public Task<DeliveryResult> DeliverAsync(IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken,
            Func<bool>? mayStart = null, DeliveryWindow? window = null)
        {
            if (Interlocked.Increment(ref Calls) == 1)
            {
                throw new InvalidOperationException("Cannot read invalid UTF-16 JSON text");
            }
            return Task.FromResult(new DeliveryResult(commands.Select(_ => CommandOutcome.Accepted).ToArray(), null));
        }
    }

    [Fact]
    public async Task An_exception_in_a_pass_is_logged_rolled_back_and_reported_as_a_failure_then_the_retry_delivers()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(Enumerable.Range(0, 3).Select(i =>
            new OutboxInsert("publish", JsonSerializer.Serialize(new { channel = "x", data = new { i } }), 0)));
        var ids = await table.IdsAsync();
        await using var store = new OutboxStore("pg_crash", new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        var logs = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs));
        var client = new ThrowingClient();
        var processor = new OutboxBatchProcessor(store, client, factory.CreateLogger("test"));

        var report = await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);

        Assert.True(report.Failed);
        Assert.Contains("InvalidOperationException", report.DatabaseError, StringComparison.Ordinal);
        Assert.Equal(3, await table.CountAsync());
        Assert.Contains(logs.Lines, l =>
            l.Contains("[2006]", StringComparison.Ordinal) && l.Contains("Consumer=pg_crash", StringComparison.Ordinal)
            && l.Contains("Partition=0", StringComparison.Ordinal) && l.Contains($"FirstId={ids[0]}", StringComparison.Ordinal));
        var policy = new RetryPolicy();
        policy.After(report);
        Assert.True(policy.Delay > TimeSpan.Zero);

        // The lock was released by the rollback: the retry reads the same rows and delivers them.
        var retry = await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);
        Assert.False(retry.Failed);
        Assert.Equal(3, retry.Delivered);
        Assert.Equal(0, await table.CountAsync());
    }
}
