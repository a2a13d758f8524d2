using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Outbox;

/// <summary>
/// A temporary failure after progress is retried inside the pass (same transaction, same rows, no re-read): a backlog
/// under a steady error-100 rate is not slowed by a commit and a fresh read per failed command.
/// </summary>
public sealed class OutboxRetryInPassTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    private static OutboxInsert Row(int i, string channel = "x") =>
        new("publish", JsonSerializer.Serialize(new { channel, data = new { i } }), 0);

    private static int IndexOf(ReceivedCommand command) =>
        JsonDocument.Parse(command.RequestJson).RootElement.GetProperty("data").GetProperty("i").GetInt32();

    private async Task<(OutboxTestTable Table, OutboxStore Store)> SetUpAsync(IEnumerable<OutboxInsert> rows)
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(rows);
        var store = new OutboxStore(PostgresFixture.UniqueName("c"), new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn, OutboxTableName = name, DeadLetterTableName = name + "_dead_letter", NumPartitions = 1,
        }, NullLoggerFactory.Instance);
        await store.InitializeAsync(CancellationToken.None);
        return (table, store);
    }

    private static CentrifugoClient Client(CentrifugoStandIn standIn) =>
        new(new ApiOptions { Url = standIn.Url, Key = standIn.ApiKey, MaxBatchSize = 100, Timeout = TimeSpan.FromSeconds(5) },
            NullLogger<CentrifugoClient>.Instance);

    [Fact]
    public async Task An_error_100_inside_a_batch_is_retried_in_the_same_pass_and_the_whole_batch_completes()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var (table, store) = await SetUpAsync(Enumerable.Range(0, 100).Select(i => Row(i)));
        await using var _ = store;
        using var client = Client(standIn);
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);
        standIn.FailNext(1, 100, skip: 30);

        var report = await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);

        Assert.False(report.Failed);
        Assert.Equal(100, report.Delivered);
        Assert.Equal(1, report.Retried);
        Assert.Equal(0, await table.CountAsync());
        // The rest of the failed request was applied once before the retry and again with it (at least once); every
        // command's last application is in order.
        var received = standIn.Received.Select(IndexOf).ToList();
        Assert.Equal(Enumerable.Range(0, 30).Concat(Enumerable.Range(31, 69)).Concat(Enumerable.Range(30, 70)), received);
    }

    [Fact]
    public async Task A_retry_that_completes_nothing_ends_the_pass_with_the_completed_prefix_deleted()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        var (table, store) = await SetUpAsync(Enumerable.Range(0, 100).Select(i => Row(i, i == 30 ? "bad" : "x")));
        await using var _ = store;
        using var client = Client(standIn);
        var processor = new OutboxBatchProcessor(store, client, NullLogger.Instance);
        standIn.FailChannel("bad", 2);

        var report = await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);

        Assert.Equal(FailureKind.Temporary, report.Failure?.Kind);
        Assert.Equal(30, report.Delivered);
        Assert.Equal(1, report.Retried);
        Assert.Equal(70, await table.CountAsync());
        Assert.Empty(standIn.ReceivedFor("bad"));
        // The next pass reads from the failed row and delivers the rest.
        var next = await processor.FinishSafelyAsync(await processor.ReadAsync(0, CancellationToken.None), CancellationToken.None);
        Assert.False(next.Failed);
        Assert.Equal(70, next.Delivered);
        Assert.Equal(0, await table.CountAsync());
    }
}
