using Akka.Actor;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Node;

public sealed class IdleCostTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
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
            TestNode.Postgres("pg_idle", pg.Instance.GetUrlDsn(database), "outbox", partitions, poll: TimeSpan.FromMilliseconds(100))),
            output);
        await node.WaitForPartitionsAsync(partitions);

        // Akka's timer wheel wakes a thread every tick: at the default 10 ms that was most of an idle node's CPU
        // (docs/benchmarks.md), so the node runs it at 100 ms.
        var system = node.Services.GetRequiredService<ActorSystem>();
        Assert.Equal(TimeSpan.FromMilliseconds(100), system.Settings.Config.GetTimeSpan("akka.scheduler.tick-duration", null));

        // Every SQL command the node sends is logged by Npgsql (debug level, captured here): count them over a
        // window. The measured quantity is "commands per window", so the window is a real delay.
        var mark = node.Logs.Lines.Count;
        await Task.Delay(TimeSpan.FromSeconds(3));
        var commands = node.Logs.Lines.Skip(mark).Count(l => l.Contains("Npgsql.Command [2000]", StringComparison.Ordinal));

        // Centrifugo's loop would run 200 partitions × 10 polls/s × 3 s = 6,000 passes here; the census runs one query
        // per poll interval for the whole consumer (~30).
        Assert.InRange(commands, 1, 100);

        // And the census still finds new rows with no NOTIFY configured.
        await table.InsertOneAsync(new OutboxInsert("publish", """{"channel":"idle:x","data":{}}""", 137));
        await standIn.WaitForReceivedAsync(1, TimeSpan.FromSeconds(10));
        Assert.Equal("idle:x", Assert.Single(standIn.Received).Channels.Single());
    }
}
