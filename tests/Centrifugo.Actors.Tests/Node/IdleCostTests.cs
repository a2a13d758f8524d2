using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Postgres;
using Npgsql;

namespace Centrifugo.Actors.Tests.Node;

public sealed class IdleCostTests(PostgresFixture pg) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Idle_partitions_do_not_each_poll_the_table()
    {
        const int partitions = 200;
        var database = PostgresFixture.UniqueName("idle");
        await using var ds = NpgsqlDataSource.Create(await pg.Instance.CreateDatabaseAsync(database));
        var table = await OutboxTestTable.CreateAsync(ds, "outbox");
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_idle", pg.Instance.GetUrlDsn(database), "outbox", partitions, poll: TimeSpan.FromMilliseconds(100))));
        await node.WaitForPartitionsAsync(partitions);

        // The measured quantity is the number of transactions in a fixed window, so the window is a real delay.
        var before = await CommitsAsync(ds, database);
        await Task.Delay(TimeSpan.FromSeconds(3));
        var after = await CommitsAsync(ds, database);

        // Centrifugo's loop would run 200 partitions × 10 polls/s × 3 s = 6,000 transactions here; the census runs
        // one query per poll interval for the whole consumer (~30), plus this test's own statements.
        Assert.InRange(after - before, 1, 200);

        // And the census still finds new rows with no NOTIFY configured.
        await table.InsertOneAsync(new OutboxInsert("publish", """{"channel":"idle:x","data":{}}""", 137));
        await standIn.WaitForReceivedAsync(1, TimeSpan.FromSeconds(10));
        Assert.Equal("idle:x", Assert.Single(standIn.Received).Channels.Single());
    }

    private static async Task<long> CommitsAsync(NpgsqlDataSource ds, string database)
    {
        // Statistics reach pg_stat_database when backends flush them (about a second late), a small error on both ends.
        await using var cmd = ds.CreateCommand("SELECT xact_commit FROM pg_stat_database WHERE datname = $1");
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = database });
        return (long)(await cmd.ExecuteScalarAsync())!;
    }
}
