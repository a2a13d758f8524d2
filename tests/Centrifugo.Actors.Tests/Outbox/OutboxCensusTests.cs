using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Outbox;
using Centrifugo.Actors.Testing.Postgres;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Outbox;

public sealed class OutboxCensusTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Census_returns_exactly_the_non_empty_partitions_in_range()
    {
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
        [
            new OutboxInsert("publish", "{}", 2),
            new OutboxInsert("publish", "{}", 2),
            new OutboxInsert("publish", "{}", 5),
            new OutboxInsert("publish", "{}", 7),
            new OutboxInsert("publish", "{}", 8),   // outside num_partitions: never read, never reported
            new OutboxInsert("publish", "{}", -1),
        ]);
        await using var store = new OutboxStore("census", new PostgresConsumerOptions
        {
            Dsn = pg.Instance.UrlDsn,
            OutboxTableName = name,
            DeadLetterTableName = name + "_dead_letter",
            NumPartitions = 8,
        }, NullLoggerFactory.Instance);

        Assert.Equal([2, 5, 7], await store.NonEmptyPartitionsAsync(CancellationToken.None));

        await using (var delete = pg.DataSource.CreateCommand($"DELETE FROM {table.QuotedName} WHERE partition = 5"))
        {
            await delete.ExecuteNonQueryAsync();
        }
        Assert.Equal([2, 7], await store.NonEmptyPartitionsAsync(CancellationToken.None));
    }
}
